//! The objects of a key the cells generate (C_GenerateKeyPair, `fns/keygen.rs`): the two
//! templates validated before the cells are asked — so a refusal costs nothing — and the
//! attributes of a key born on the token once its public key is known. Attribute handling is
//! the policy table's, as for C_CreateObject; this file adds only what generation changes.

use std::collections::BTreeMap;

use cryptoki_sys::*;
use digest::Digest;
use keyfrag_core::rsa_public::RsaPublic;

use super::attr::{self, Attribute, encode_bool, encode_ulong};
use super::{fill_rsa_public, policy};
use crate::error::{CkError, Result, err};
use crate::mechanism::Policy;

/// The only public exponent the cells' protocol generates: the d-share computation is built
/// around e = 65537 (issue 3, item 1), so no other e can be honoured.
pub const E_65537: [u8; 3] = [1, 0, 1];

pub type Attrs = BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>;

/// A validated request: the size, and each object's attributes as far as they are known
/// before generation (template values and defaults; the key's public parts come later).
#[derive(Debug)]
pub struct Plan {
    pub bits: usize,
    pub public: Attrs,
    pub private: Attrs,
    /// Neither template named a CKA_ID: both objects get one derived from the modulus.
    pub default_id: bool,
}

impl Plan {
    pub fn private_token(&self) -> bool {
        attrs_bool(&self.private, CKA_TOKEN)
    }
    pub fn any_token(&self) -> bool {
        self.private_token() || attrs_bool(&self.public, CKA_TOKEN)
    }
}

pub fn attrs_bool(a: &Attrs, ty: CK_ATTRIBUTE_TYPE) -> bool {
    a.get(&ty).and_then(|v| attr::decode_bool(v)) == Some(true)
}

fn inconsistent(why: &str) -> CkError {
    tracing::warn!("C_GenerateKeyPair: template inconsistent: {why}");
    err(CKR_TEMPLATE_INCONSISTENT)
}

/// Attributes of a generated object that the token sets: accepted in a template only with
/// the value generation gives them (tools send CKA_LOCAL = true and the like), otherwise
/// CKR_ATTRIBUTE_READ_ONLY as the spec says for attributes that must not be specified on
/// generation.
fn generated_value(class: CK_OBJECT_CLASS, ty: CK_ATTRIBUTE_TYPE) -> Option<Vec<u8>> {
    match (class, ty) {
        (_, CKA_LOCAL) => Some(encode_bool(true)),
        (_, CKA_KEY_GEN_MECHANISM) => Some(encode_ulong(CKM_RSA_PKCS_KEY_PAIR_GEN)),
        (CKO_PRIVATE_KEY, CKA_ALWAYS_SENSITIVE | CKA_NEVER_EXTRACTABLE) => Some(encode_bool(true)),
        _ => None,
    }
}

/// Take one template apart: the generation parameters it carries (bits, e) and the rest, for
/// the policy table. Refuses what cannot be honoured.
fn split_template(
    class: CK_OBJECT_CLASS,
    template: &[Attribute],
    bits: &mut Option<usize>,
) -> Result<Vec<Attribute>> {
    let mut rest = Vec::with_capacity(template.len() + 2);
    for a in template {
        match a.ty {
            CKA_CLASS if a.as_ulong()? != class => return Err(inconsistent("CKA_CLASS")),
            CKA_KEY_TYPE if a.as_ulong()? != CKK_RSA => {
                return Err(inconsistent("CKA_KEY_TYPE is not CKK_RSA"));
            }
            CKA_CLASS | CKA_KEY_TYPE => {}
            CKA_MODULUS_BITS => {
                let b = usize::try_from(a.as_ulong()?).unwrap_or(usize::MAX);
                match bits {
                    Some(x) if *x != b => {
                        return Err(inconsistent("two different CKA_MODULUS_BITS"));
                    }
                    _ => *bits = Some(b),
                }
            }
            CKA_PUBLIC_EXPONENT => {
                let e = a.value.iter().skip_while(|b| **b == 0).copied();
                if !e.eq(E_65537) {
                    tracing::warn!(
                        "C_GenerateKeyPair: CKA_PUBLIC_EXPONENT must be 65537 or absent: the \
                         cells' generation protocol produces e = 65537 only"
                    );
                    return Err(err(CKR_ATTRIBUTE_VALUE_INVALID));
                }
            }
            // The spec's generic rule is CKR_ATTRIBUTE_VALUE_INVALID for a value the token
            // cannot honour; READ_ONLY would wrongly tell the caller the attribute may not be
            // given at all, while CKA_SENSITIVE = true / CKA_EXTRACTABLE = false are fine.
            // (NXP's libpkcs11 and ykcs11 answer the same for their unextractable-only keys;
            // SoftHSM and kryoptic honour either value, having the key in hand.)
            CKA_SENSITIVE if class == CKO_PRIVATE_KEY && !a.as_bool()? => {
                tracing::warn!(
                    "C_GenerateKeyPair: CKA_SENSITIVE = false refused: the private exponent \
                     exists only as fragments on the cells and can never be revealed"
                );
                return Err(err(CKR_ATTRIBUTE_VALUE_INVALID));
            }
            CKA_EXTRACTABLE if class == CKO_PRIVATE_KEY && a.as_bool()? => {
                tracing::warn!(
                    "C_GenerateKeyPair: CKA_EXTRACTABLE = true refused: a key generated by \
                     fragments never exists whole, so it cannot be wrapped or exported"
                );
                return Err(err(CKR_ATTRIBUTE_VALUE_INVALID));
            }
            CKA_SENSITIVE | CKA_EXTRACTABLE if class == CKO_PRIVATE_KEY => {}
            ty if ty == CKA_MODULUS || policy::is_sensitive(class, ty) => {
                tracing::warn!(
                    attribute = ty,
                    "C_GenerateKeyPair: a generation template may not give key material"
                );
                return Err(err(CKR_ATTRIBUTE_READ_ONLY));
            }
            ty => match generated_value(class, ty) {
                Some(v) if v == a.value[..] => {}
                Some(_) => {
                    tracing::warn!(
                        attribute = ty,
                        "C_GenerateKeyPair: attribute set by the token, template value refused"
                    );
                    return Err(err(CKR_ATTRIBUTE_READ_ONLY));
                }
                None => rest.push(a.clone()),
            },
        }
    }
    rest.push(Attribute::new(CKA_CLASS, encode_ulong(class)));
    rest.push(Attribute::new(CKA_KEY_TYPE, encode_ulong(CKK_RSA)));
    Ok(rest)
}

/// Validate both templates (everything that does not need the cells) and plan the objects.
pub fn make_plan(policy: &Policy, public: &[Attribute], private: &[Attribute]) -> Result<Plan> {
    let mut bits = None;
    let mut pub_rest = split_template(CKO_PUBLIC_KEY, public, &mut bits)?;
    let mut priv_rest = split_template(CKO_PRIVATE_KEY, private, &mut bits)?;
    let bits = bits.ok_or_else(|| {
        tracing::warn!("C_GenerateKeyPair: the public key template lacks CKA_MODULUS_BITS");
        err(CKR_TEMPLATE_INCOMPLETE)
    })?;
    if !policy.generation_bits().contains(&bits) {
        tracing::warn!(
            bits,
            allowed = ?policy.generation_bits(),
            "C_GenerateKeyPair: CKA_MODULUS_BITS not a size this token generates"
        );
        return Err(err(CKR_KEY_SIZE_RANGE));
    }
    // The pair shares CKA_ID and CKA_LABEL (COMPAT item 1): one given on one template only
    // is the pair's.
    for ty in [CKA_ID, CKA_LABEL] {
        let p = attr::find(&pub_rest, ty).cloned();
        let q = attr::find(&priv_rest, ty).cloned();
        match (p, q) {
            (Some(a), None) => priv_rest.push(a),
            (None, Some(a)) => pub_rest.push(a),
            _ => {}
        }
    }
    let default_id = attr::find(&pub_rest, CKA_ID).is_none();
    Ok(Plan {
        bits,
        public: policy::build_generated(CKO_PUBLIC_KEY, &pub_rest)?,
        private: policy::build_generated(CKO_PRIVATE_KEY, &priv_rest)?,
        default_id,
    })
}

/// The attributes a generated key's objects get once its public key is known.
pub fn complete(plan: &mut Plan, key: &RsaPublic) {
    for (class, attrs) in [
        (CKO_PUBLIC_KEY, &mut plan.public),
        (CKO_PRIVATE_KEY, &mut plan.private),
    ] {
        fill_rsa_public(attrs, class, key);
        attrs.insert(CKA_LOCAL, encode_bool(true));
        attrs.insert(
            CKA_KEY_GEN_MECHANISM,
            encode_ulong(CKM_RSA_PKCS_KEY_PAIR_GEN),
        );
        if plan.default_id {
            // SHA-1 of the modulus: the CKA_ID NSS and OpenSC derive for RSA keys, so a
            // certificate imported later by those tools pairs with the key (COMPAT item 1).
            attrs.insert(CKA_ID, sha1::Sha1::digest(key.modulus()).to_vec());
        }
    }
    for (ty, v) in [
        (CKA_SENSITIVE, true),
        (CKA_ALWAYS_SENSITIVE, true),
        (CKA_EXTRACTABLE, false),
        (CKA_NEVER_EXTRACTABLE, true),
    ] {
        plan.private.insert(ty, encode_bool(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV: Policy = Policy {
        allow_raw_rsa: false,
        allow_rsa_1024: true,
        key_pair_generation: true,
    };
    const PROD: Policy = Policy {
        allow_raw_rsa: false,
        allow_rsa_1024: false,
        key_pair_generation: true,
    };

    fn b(ty: CK_ATTRIBUTE_TYPE, v: bool) -> Attribute {
        Attribute::bool(ty, v)
    }
    fn u(ty: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> Attribute {
        Attribute::ulong(ty, v)
    }
    fn bytes(ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Attribute {
        Attribute::new(ty, v.to_vec())
    }
    fn rv(r: Result<Plan>) -> CK_RV {
        r.unwrap_err().rv()
    }

    /// pkcs11-tool --keypairgen --key-type rsa:2048 --id 01 --label k (OpenSC 0.2x).
    fn pkcs11_tool() -> (Vec<Attribute>, Vec<Attribute>) {
        (
            vec![
                u(CKA_CLASS, CKO_PUBLIC_KEY),
                b(CKA_TOKEN, true),
                u(CKA_MODULUS_BITS, 2048),
                bytes(CKA_PUBLIC_EXPONENT, &[1, 0, 1]),
                u(CKA_KEY_TYPE, CKK_RSA),
                bytes(CKA_ID, &[1]),
                bytes(CKA_LABEL, b"k"),
                b(CKA_VERIFY, true),
                b(CKA_ENCRYPT, true),
                b(CKA_WRAP, true),
            ],
            vec![
                u(CKA_CLASS, CKO_PRIVATE_KEY),
                b(CKA_TOKEN, true),
                b(CKA_PRIVATE, true),
                b(CKA_SENSITIVE, true),
                u(CKA_KEY_TYPE, CKK_RSA),
                bytes(CKA_ID, &[1]),
                bytes(CKA_LABEL, b"k"),
                b(CKA_SIGN, true),
                b(CKA_DECRYPT, true),
                b(CKA_UNWRAP, true),
            ],
        )
    }

    #[test]
    fn generic_tool_templates() {
        let (p, q) = pkcs11_tool();
        let plan = make_plan(&PROD, &p, &q).unwrap();
        assert_eq!(plan.bits, 2048);
        assert!(plan.private_token() && !plan.default_id);
        assert_eq!(plan.private[&CKA_ID], [1]);
        assert_eq!(plan.public[&CKA_CLASS], encode_ulong(CKO_PUBLIC_KEY));
        // SunPKCS11: bits and a BigInteger exponent, an empty private template.
        let p = vec![
            u(CKA_MODULUS_BITS, 3072),
            bytes(CKA_PUBLIC_EXPONENT, &[0, 1, 0, 1]),
        ];
        let plan = make_plan(&PROD, &p, &[]).unwrap();
        assert!(!plan.any_token() && plan.default_id);
        assert_eq!(plan.private[&CKA_PRIVATE], encode_bool(true));
        // NSS (certutil -R): usage flags, CKA_DERIVE and CKA_MODIFIABLE on both, no CKA_ID;
        // the token's own flags given with the values it sets.
        let p = vec![
            u(CKA_MODULUS_BITS, 4096),
            bytes(CKA_PUBLIC_EXPONENT, &[1, 0, 1]),
            b(CKA_TOKEN, true),
            b(CKA_DERIVE, false),
            b(CKA_WRAP, false),
            b(CKA_VERIFY, true),
            b(CKA_VERIFY_RECOVER, true),
            b(CKA_ENCRYPT, true),
            b(CKA_MODIFIABLE, true),
        ];
        let q = vec![
            b(CKA_SENSITIVE, true),
            b(CKA_TOKEN, true),
            b(CKA_PRIVATE, true),
            b(CKA_DERIVE, false),
            b(CKA_UNWRAP, false),
            b(CKA_SIGN, true),
            b(CKA_DECRYPT, true),
            b(CKA_EXTRACTABLE, false),
            b(CKA_MODIFIABLE, true),
            b(CKA_LOCAL, true),
            b(CKA_NEVER_EXTRACTABLE, true),
            // Attributes of other classes or kinds of key: ignored, as for C_CreateObject.
            bytes(CKA_EC_PARAMS, &[6, 3, 1, 2, 3]),
            b(CKA_VERIFY, true),
        ];
        let plan = make_plan(&PROD, &p, &q).unwrap();
        assert_eq!(plan.bits, 4096);
        assert!(!plan.private.contains_key(&CKA_EC_PARAMS));
        assert!(!plan.private.contains_key(&CKA_VERIFY));
    }

    #[test]
    fn completed_objects() {
        let (p, q) = pkcs11_tool();
        let mut plan = make_plan(&DEV, &p, &q).unwrap();
        let mut n = vec![0xc5; 128];
        n[127] |= 1;
        let key = RsaPublic::new(&n, &E_65537).unwrap();
        complete(&mut plan, &key);
        for a in [&plan.public, &plan.private] {
            assert_eq!(a[&CKA_LOCAL], encode_bool(true));
            assert_eq!(
                a[&CKA_KEY_GEN_MECHANISM],
                encode_ulong(CKM_RSA_PKCS_KEY_PAIR_GEN)
            );
            assert_eq!(a[&CKA_MODULUS], n);
            assert!(a.contains_key(&CKA_PUBLIC_KEY_INFO));
        }
        assert_eq!(plan.public[&CKA_MODULUS_BITS], encode_ulong(1024));
        for (ty, v) in [
            (CKA_SENSITIVE, true),
            (CKA_ALWAYS_SENSITIVE, true),
            (CKA_EXTRACTABLE, false),
            (CKA_NEVER_EXTRACTABLE, true),
        ] {
            assert_eq!(plan.private[&ty], encode_bool(v), "{ty:#x}");
        }
        // No CKA_ID given: the same one, from the modulus, on both.
        let mut plan = make_plan(&DEV, &[u(CKA_MODULUS_BITS, 1024)], &[]).unwrap();
        complete(&mut plan, &key);
        assert_eq!(plan.public[&CKA_ID].len(), 20);
        assert_eq!(plan.public[&CKA_ID], plan.private[&CKA_ID]);
    }

    #[test]
    fn refusals() {
        let bits = |n| vec![u(CKA_MODULUS_BITS, n)];
        assert_eq!(rv(make_plan(&DEV, &[], &[])), CKR_TEMPLATE_INCOMPLETE);
        assert_eq!(rv(make_plan(&DEV, &bits(1000), &[])), CKR_KEY_SIZE_RANGE);
        assert_eq!(rv(make_plan(&PROD, &bits(1024), &[])), CKR_KEY_SIZE_RANGE);
        assert_eq!(rv(make_plan(&DEV, &bits(2049), &[])), CKR_KEY_SIZE_RANGE);
        assert_eq!(rv(make_plan(&DEV, &bits(8192), &[])), CKR_KEY_SIZE_RANGE);
        assert!(make_plan(&DEV, &bits(1024), &[]).is_ok());
        let with = |a: Attribute| {
            let mut t = bits(2048);
            t.push(a);
            t
        };
        for e in [&[3u8][..], &[1, 0, 0, 1], &[], &[0]] {
            assert_eq!(
                rv(make_plan(&DEV, &with(bytes(CKA_PUBLIC_EXPONENT, e)), &[])),
                CKR_ATTRIBUTE_VALUE_INVALID,
                "e = {e:?}"
            );
        }
        // The exponent on the private template is checked too.
        assert_eq!(
            rv(make_plan(
                &DEV,
                &bits(2048),
                &[bytes(CKA_PUBLIC_EXPONENT, &[3])]
            )),
            CKR_ATTRIBUTE_VALUE_INVALID
        );
        let t = bits(2048);
        for (a, want) in [
            (b(CKA_EXTRACTABLE, true), CKR_ATTRIBUTE_VALUE_INVALID),
            (b(CKA_SENSITIVE, false), CKR_ATTRIBUTE_VALUE_INVALID),
            (b(CKA_LOCAL, false), CKR_ATTRIBUTE_READ_ONLY),
            (b(CKA_ALWAYS_SENSITIVE, false), CKR_ATTRIBUTE_READ_ONLY),
            (bytes(CKA_PRIVATE_EXPONENT, &[1]), CKR_ATTRIBUTE_READ_ONLY),
            (bytes(CKA_MODULUS, &[1]), CKR_ATTRIBUTE_READ_ONLY),
            (u(CKA_CLASS, CKO_PUBLIC_KEY), CKR_TEMPLATE_INCONSISTENT),
            (u(CKA_KEY_TYPE, CKK_EC), CKR_TEMPLATE_INCONSISTENT),
            (u(CKA_MODULUS_BITS, 3072), CKR_TEMPLATE_INCONSISTENT),
            (
                bytes(CKA_VENDOR_DEFINED | 7, &[1]),
                CKR_ATTRIBUTE_TYPE_INVALID,
            ),
            (bytes(CKA_TOKEN, &[1, 1]), CKR_ATTRIBUTE_VALUE_INVALID),
        ] {
            assert_eq!(
                rv(make_plan(&DEV, &t, std::slice::from_ref(&a))),
                want,
                "{a:?}"
            );
        }
        // CKA_ID on one template only is the pair's.
        let p = make_plan(&DEV, &t, &[bytes(CKA_ID, b"x")]).unwrap();
        assert_eq!(p.public[&CKA_ID], b"x");
        assert!(!p.default_id);
    }
}
