//! A PKCS#11 module loaded by path with `cryptoki` (dlopen, as any application does), its
//! token found by label, the user logged in, and the RSA session keys the benchmark uses.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use rsa::BoxedUint;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde::Serialize;

/// What the library and token say about themselves.
#[derive(Clone, Debug, Serialize)]
pub struct ModuleInfo {
    /// Short name used in tables: the library's file stem without `lib`.
    pub name: String,
    pub path: PathBuf,
    pub manufacturer: String,
    pub description: String,
    pub library_version: String,
    pub token_label: String,
    pub token_model: String,
}

pub struct Module {
    pub info: ModuleInfo,
    pub ctx: Pkcs11,
    pub slot: Slot,
    /// Kept open for the whole run: it holds the login (closing the last session logs out)
    /// and owns the session keys.
    pub admin: Session,
}

fn ck(what: &str) -> impl Fn(CkError) -> String + '_ {
    move |e| format!("{what}: {}", short(&e))
}

/// A PKCS#11 error as `C_Function: CKR name` (cryptoki's own text is a paragraph).
pub fn short(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, f) => format!("C_{f:?}: {rv:?}"),
        e => e.to_string(),
    }
}

impl Module {
    /// Load `path`, initialise it (OS locking), find the token `label` (or the first slot with
    /// a token), open a session and log the user in.
    pub fn open(path: &Path, pin: &str, label: Option<&str>) -> Result<Module, String> {
        let ctx = Pkcs11::new(path).map_err(|e| format!("load {}: {e}", path.display()))?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| format!("C_Initialize of {}: {e}", path.display()))?;
        let lib = ctx.get_library_info().map_err(ck("C_GetInfo"))?;
        let slots = ctx.get_slots_with_token().map_err(ck("C_GetSlotList"))?;
        let mut chosen = None;
        for slot in slots {
            let ti = ctx.get_token_info(slot).map_err(ck("C_GetTokenInfo"))?;
            let matches = match label {
                Some(l) => ti.label().trim_end() == l,
                None => ti.token_initialized(),
            };
            if matches {
                chosen = Some((slot, ti));
                break;
            }
        }
        let (slot, ti) = chosen.ok_or_else(|| match label {
            Some(l) => format!("{}: no token labelled {l:?}", path.display()),
            None => format!("{}: no initialised token", path.display()),
        })?;
        let admin = ctx.open_rw_session(slot).map_err(ck("C_OpenSession"))?;
        admin
            .login(UserType::User, Some(&AuthPin::new(pin.into())))
            .map_err(ck("C_Login"))?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let base = stem.strip_prefix("lib").unwrap_or(&stem);
        let base = base.split('.').next().unwrap_or_default();
        let name = base.strip_suffix("_pkcs11").unwrap_or(base).to_string();
        Ok(Module {
            info: ModuleInfo {
                name,
                path: path.to_path_buf(),
                manufacturer: lib.manufacturer_id().trim_end().to_string(),
                description: lib.library_description().trim_end().to_string(),
                library_version: lib.library_version().to_string(),
                token_label: ti.label().trim_end().to_string(),
                token_model: ti.model().trim_end().to_string(),
            },
            ctx,
            slot,
            admin,
        })
    }

    /// Finalise the library (sessions first: the admin session is closed by drop).
    pub fn close(self) {
        let Module { ctx, admin, .. } = self;
        drop(admin);
        if let Err(e) = ctx.finalize() {
            eprintln!("keyfrag bench: C_Finalize: {e}");
        }
    }
}

/// How the key came to be, and how long that took.
#[derive(Clone, Debug, Serialize)]
pub struct KeyOrigin {
    /// "generated" (C_GenerateKeyPair) or "imported" (C_CreateObject).
    pub how: &'static str,
    /// Wall time of C_GenerateKeyPair, or of the private key's C_CreateObject.
    pub ms: f64,
    /// Why C_GenerateKeyPair was not used, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate_error: Option<String>,
}

/// One RSA key pair on a module: private and public session objects, and the public key
/// as the `rsa` crate sees it (for checking results and making ciphertexts).
pub struct Key {
    pub bits: usize,
    pub private: ObjectHandle,
    pub public: ObjectHandle,
    pub rsa_public: rsa::PublicKey,
    pub origin: KeyOrigin,
}

fn be(x: &BoxedUint) -> Vec<u8> {
    x.to_be_bytes_trimmed_vartime().to_vec()
}

fn label(bits: usize) -> Vec<u8> {
    format!("keyfrag-bench-{bits}").into_bytes()
}

fn is_unsupported(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(RvError::FunctionNotSupported | RvError::MechanismInvalid, _)
            | CkError::NullFunctionPointer
    )
}

/// A session key pair of `bits`: generated by the module if it can (timed), else `import`
/// (a key made by the `rsa` crate, with its CRT components) is imported.
/// The public and private templates of a session key pair of `bits` (public exponent
/// 65537), as C_GenerateKeyPair gets them.
fn generate_templates(bits: usize) -> (Vec<Attribute>, Vec<Attribute>) {
    let mut public = public_template(bits);
    public.push(Attribute::ModulusBits((bits as u64).into()));
    public.push(Attribute::PublicExponent(vec![1, 0, 1]));
    (public, private_template(bits))
}

fn public_template(bits: usize) -> Vec<Attribute> {
    vec![
        Attribute::Token(false),
        Attribute::Label(label(bits)),
        Attribute::Verify(true),
        Attribute::Encrypt(true),
    ]
}

fn private_template(bits: usize) -> Vec<Attribute> {
    vec![
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Label(label(bits)),
        Attribute::Sign(true),
        Attribute::Decrypt(true),
    ]
}

/// C_GenerateKeyPair (CKM_RSA_PKCS_KEY_PAIR_GEN, session objects) on the admin session:
/// the handles (public, private) and the wall time of the call.
pub fn generate(
    module: &Module,
    bits: usize,
) -> (Result<(ObjectHandle, ObjectHandle), CkError>, Duration) {
    let (public, private) = generate_templates(bits);
    let t = Instant::now();
    let generated =
        module
            .admin
            .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private);
    (generated, t.elapsed())
}

/// The public key of a generated pair, read back with C_GetAttributeValue.
pub fn read_public(module: &Module, public: ObjectHandle) -> Result<rsa::PublicKey, String> {
    let attrs = module
        .admin
        .get_attributes(
            public,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )
        .map_err(ck("C_GetAttributeValue of a generated public key"))?;
    let (mut n, mut e) = (None, None);
    for a in attrs {
        match a {
            Attribute::Modulus(v) => n = Some(v),
            Attribute::PublicExponent(v) => e = Some(v),
            _ => {}
        }
    }
    let (n, e) = n
        .zip(e)
        .ok_or("generated key lacks CKA_MODULUS or CKA_PUBLIC_EXPONENT")?;
    rsa::PublicKey::new(
        BoxedUint::from_be_slice_vartime(&n),
        BoxedUint::from_be_slice_vartime(&e),
    )
    .map_err(|e| format!("generated public key: {e}"))
}

pub fn make_key(module: &Module, bits: usize, import: &rsa::PrivateKey) -> Result<Key, String> {
    let session = &module.admin;
    let (generated, elapsed) = generate(module, bits);
    let generate_error = match generated {
        Ok((public, private)) => {
            let rsa_public = read_public(module, public)?;
            return Ok(Key {
                bits,
                private,
                public,
                rsa_public,
                origin: KeyOrigin {
                    how: "generated",
                    ms: ms(elapsed),
                    generate_error: None,
                },
            });
        }
        Err(e) if is_unsupported(&e) => short(&e),
        Err(e) => return Err(format!("C_GenerateKeyPair RSA-{bits}: {}", short(&e))),
    };

    let (p, q) = match import.primes() {
        [p, q] => (p, q),
        _ => return Err("the imported key must have two primes".into()),
    };
    let crt = |x: Option<&BoxedUint>, what: &str| {
        x.map(be)
            .ok_or_else(|| format!("imported key lacks {what}"))
    };
    let mut private = private_template(bits);
    private.extend([
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Modulus(import.n_bytes().to_vec()),
        Attribute::PublicExponent(import.e_bytes().to_vec()),
        Attribute::PrivateExponent(be(import.d())),
        Attribute::Prime1(be(p)),
        Attribute::Prime2(be(q)),
        Attribute::Exponent1(crt(import.dp(), "dP")?),
        Attribute::Exponent2(crt(import.dq(), "dQ")?),
        Attribute::Coefficient(crt(import.crt_coefficient().as_ref(), "qInv")?),
    ]);
    let t = Instant::now();
    let private = session
        .create_object(&private)
        .map_err(ck("C_CreateObject (RSA private key)"))?;
    let elapsed = t.elapsed();
    let mut public = public_template(bits);
    public.extend([
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Modulus(import.n_bytes().to_vec()),
        Attribute::PublicExponent(import.e_bytes().to_vec()),
    ]);
    let public = session
        .create_object(&public)
        .map_err(ck("C_CreateObject (RSA public key)"))?;
    Ok(Key {
        bits,
        private,
        public,
        rsa_public: import.to_public_key(),
        origin: KeyOrigin {
            how: "imported",
            ms: ms(elapsed),
            generate_error: Some(generate_error),
        },
    })
}

/// Destroy a key's objects (best effort: the session ends soon anyway).
pub fn destroy_key(module: &Module, key: &Key) {
    for h in [key.private, key.public] {
        let _ = module.admin.destroy_object(h);
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
