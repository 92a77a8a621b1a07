//! The built cdylib loaded with the `cryptoki` crate (as applications load it), against a
//! testbed. Needs target/debug/libkeyfrag_pkcs11.so (cargo builds it with the tests).

use std::ffi::{CString, c_void};
use std::path::PathBuf;
use std::ptr::NonNull;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use keyfrag_cli::testbed::{Testbed, TestbedOptions};
use rsa::sha2::{Digest, Sha256};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};

/// target/debug/deps/<test> → target/debug/libkeyfrag_pkcs11.so (or TEST_PKCS11_MODULE).
fn module_path() -> PathBuf {
    if let Ok(p) = std::env::var("TEST_PKCS11_MODULE") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("libkeyfrag_pkcs11.so")
}

#[test]
fn cryptoki_sign_decrypt_with_the_built_module() {
    let path = module_path();
    assert!(path.exists(), "{} not built", path.display());
    let bed = Testbed::start(TestbedOptions::default());
    let reserved = CString::new(format!("config={}", bed.config_path.display())).unwrap();
    let pkcs11 = Pkcs11::new(&path).unwrap();
    assert!(pkcs11.is_fn_supported(Function::SessionCancel));
    // SAFETY: a NUL-terminated string that outlives C_Initialize.
    let args = unsafe {
        CInitializeArgs::new_with_reserved(
            CInitializeFlags::OS_LOCKING_OK,
            NonNull::new(reserved.as_ptr() as *mut c_void).unwrap(),
        )
    };
    pkcs11.initialize(args).unwrap();
    let info = pkcs11.get_library_info().unwrap();
    assert_eq!(info.manufacturer_id(), "keyfrag");
    let slot = pkcs11.get_slots_with_token().unwrap()[0];
    let ti = pkcs11.get_token_info(slot).unwrap();
    assert_eq!(ti.label(), "keyfrag-test");
    assert!(ti.user_pin_initialized() && ti.token_initialized() && ti.login_required());
    let mechs = pkcs11.get_mechanism_list(slot).unwrap();
    assert!(mechs.contains(&MechanismType::RSA_PKCS_PSS));

    let session = pkcs11.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new("1234".into())))
        .unwrap();
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap();
    let be = |x: &rsa::BoxedUint| x.to_be_bytes_trimmed_vartime().to_vec();
    let private = session
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(true),
            Attribute::Id(vec![1, 2, 3]),
            Attribute::Label(b"cryptoki".to_vec()),
            Attribute::Modulus(key.n_bytes().to_vec()),
            Attribute::PublicExponent(key.e_bytes().to_vec()),
            Attribute::PrivateExponent(be(key.d())),
        ])
        .unwrap();
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(vec![1, 2, 3]),
        ])
        .unwrap();
    assert_eq!(found, vec![private]);
    let attrs = session
        .get_attributes(
            private,
            &[
                AttributeType::Modulus,
                AttributeType::Sensitive,
                AttributeType::Extractable,
            ],
        )
        .unwrap();
    assert!(attrs.contains(&Attribute::Modulus(key.n_bytes().to_vec())));
    assert!(attrs.contains(&Attribute::Sensitive(true)));
    assert!(attrs.contains(&Attribute::Extractable(false)));

    let public = key.to_public_key();
    let msg = b"signed through cryptoki";
    let sig = session
        .sign(&Mechanism::Sha256RsaPkcs, private, msg)
        .unwrap();
    public.pkcs1v15_verify::<Sha256>(msg, &sig).unwrap();
    let pss = PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    };
    let hash = Sha256::digest(msg);
    let sig = session
        .sign(&Mechanism::RsaPkcsPss(pss), private, &hash)
        .unwrap();
    public.pss_verify_prehash::<Sha256>(&hash, &sig).unwrap();

    let c = public.oaep_encrypt::<Sha256>(b"plaintext").unwrap();
    let oaep = PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    );
    let plain = session
        .decrypt(&Mechanism::RsaPkcsOaep(oaep), private, &c)
        .unwrap();
    assert_eq!(plain, b"plaintext");

    session.destroy_object(private).unwrap();
    drop(session);
    pkcs11.finalize().unwrap();
}
