//! Regressions found by running real software against the module (test-apps/, the cryptoki
//! crate's published suite in pkcs11-tests/): each test names the program that tripped.
#![allow(clippy::macro_metavars_in_unsafe)] // `call!` wraps calls through the C function list

mod common;

use common::*;
use cryptoki_sys::*;

fn create(h: CK_SESSION_HANDLE, t: &mut Tpl) -> Result<CK_OBJECT_HANDLE, CK_RV> {
    let (tp, tn) = t.ptr();
    let mut o = 0;
    match call!(C_CreateObject, h, tp, tn, &mut o) {
        CKR_OK => Ok(o),
        rv => Err(rv),
    }
}

/// An RSA public key template with an odd `bytes`-long modulus of all ones, as the cryptoki
/// suite's import_export and ro_rw_session_test make.
fn big_public(bytes: usize) -> Tpl {
    Tpl::new()
        .ulong(CKA_CLASS, CKO_PUBLIC_KEY)
        .ulong(CKA_KEY_TYPE, CKK_RSA)
        .bool(CKA_TOKEN, true)
        .bool(CKA_PRIVATE, false)
        .bool(CKA_VERIFY, true)
        .bytes(CKA_PUBLIC_EXPONENT, &[1, 0, 1])
        .bytes(CKA_MODULUS, &vec![0xFF; bytes])
}

/// cryptoki's import_export: an RSA-8192 public key object is stored and read back; the size
/// policy (at most 4096 bits) applies when an operation starts, not to storage.
#[test]
fn rsa_8192_public_key_is_stored_and_refused_at_verify_init() {
    let _f = Fixture::new();
    let h = open_session(true);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    let k = create(h, &mut big_public(1024)).unwrap();
    assert_eq!(find(h, &mut big_public(1024)), vec![k]);
    assert_eq!(get_attr(h, k, CKA_MODULUS).1.unwrap(), vec![0xFF; 1024]);
    assert_eq!(
        get_attr(h, k, CKA_MODULUS_BITS).1.unwrap(),
        (8192 as CK_ULONG).to_ne_bytes()
    );
    let mut m = mech(CKM_SHA256_RSA_PKCS);
    assert_eq!(call!(C_VerifyInit, h, &mut m, k), CKR_KEY_SIZE_RANGE);
    assert_eq!(call!(C_EncryptInit, h, &mut m, k), CKR_MECHANISM_INVALID);
    let mut m = mech(CKM_RSA_PKCS);
    assert_eq!(call!(C_EncryptInit, h, &mut m, k), CKR_KEY_SIZE_RANGE);
    assert_eq!(call!(C_DestroyObject, h, k), CKR_OK);
    // Beyond 16384 bits nothing is stored.
    assert_eq!(
        create(h, &mut big_public(2049)).unwrap_err(),
        CKR_ATTRIBUTE_VALUE_INVALID
    );
}

/// The size policy still bounds private keys: an RSA-8192 import is refused before any
/// fragment is made.
#[test]
fn rsa_8192_private_key_import_is_refused() {
    let _f = Fixture::new();
    let h = open_session(true);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    let mut t = Tpl::new()
        .ulong(CKA_CLASS, CKO_PRIVATE_KEY)
        .ulong(CKA_KEY_TYPE, CKK_RSA)
        .bytes(CKA_MODULUS, &vec![0xFF; 1024])
        .bytes(CKA_PUBLIC_EXPONENT, &[1, 0, 1])
        .bytes(CKA_PRIVATE_EXPONENT, &vec![0x55; 1024]);
    assert_eq!(create(h, &mut t).unwrap_err(), CKR_ATTRIBUTE_VALUE_INVALID);
}

/// cryptoki's derive_key_sp800 imports an X25519 private key: a key type the token does not
/// offer is CKR_ATTRIBUTE_VALUE_INVALID, not CKR_TEMPLATE_INCOMPLETE for the RSA attributes
/// such a template naturally lacks.
#[test]
fn unsupported_key_types_are_attribute_value_invalid() {
    let _f = Fixture::new();
    let h = open_session(true);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    // PrintableString "curve25519", as the suite sends it.
    let curve25519 = b"\x13\x0acurve25519";
    let mut x25519 = Tpl::new()
        .ulong(CKA_CLASS, CKO_PRIVATE_KEY)
        .ulong(CKA_KEY_TYPE, CKK_EC_MONTGOMERY)
        .bytes(CKA_EC_PARAMS, curve25519)
        .bytes(CKA_VALUE, &[7; 32])
        .bool(CKA_TOKEN, true)
        .bool(CKA_DERIVE, true);
    assert_eq!(
        create(h, &mut x25519).unwrap_err(),
        CKR_ATTRIBUTE_VALUE_INVALID
    );
    // P-256 (OID 1.2.840.10045.3.1.7) public key.
    let mut p256 = Tpl::new()
        .ulong(CKA_CLASS, CKO_PUBLIC_KEY)
        .ulong(CKA_KEY_TYPE, CKK_EC)
        .bytes(CKA_EC_PARAMS, b"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07")
        .bytes(CKA_EC_POINT, &[4; 67]);
    assert_eq!(
        create(h, &mut p256).unwrap_err(),
        CKR_ATTRIBUTE_VALUE_INVALID
    );
    // An RSA template without its modulus is still incomplete.
    let mut rsa = Tpl::new()
        .ulong(CKA_CLASS, CKO_PUBLIC_KEY)
        .ulong(CKA_KEY_TYPE, CKK_RSA)
        .bytes(CKA_PUBLIC_EXPONENT, &[1, 0, 1]);
    assert_eq!(create(h, &mut rsa).unwrap_err(), CKR_TEMPLATE_INCOMPLETE);
}
