//! Objects through the C ABI: token and session objects, certificates and data objects,
//! finding, visibility of private objects, copy (session key to token), destroy.
#![allow(clippy::macro_metavars_in_unsafe)] // `call!` wraps calls through the C function list

mod common;

use common::*;
use cryptoki_sys::*;
use rsa::sha2::Sha256;

fn create(h: CK_SESSION_HANDLE, t: &mut Tpl) -> Result<CK_OBJECT_HANDLE, CK_RV> {
    let (tp, tn) = t.ptr();
    let mut o = 0;
    match call!(C_CreateObject, h, tp, tn, &mut o) {
        CKR_OK => Ok(o),
        rv => Err(rv),
    }
}

fn cert(id: &[u8]) -> Tpl {
    Tpl::new()
        .ulong(CKA_CLASS, CKO_CERTIFICATE)
        .ulong(CKA_CERTIFICATE_TYPE, CKC_X_509)
        .bool(CKA_TOKEN, true)
        .bytes(CKA_ID, id)
        .bytes(CKA_LABEL, b"cert")
        .bytes(CKA_SUBJECT, b"\x30\x00")
        .bytes(CKA_ISSUER, b"\x30\x00")
        .bytes(CKA_SERIAL_NUMBER, b"\x02\x01\x01")
        .bytes(CKA_VALUE, b"\x30\x03\x02\x01\x01")
}

#[test]
fn token_objects_and_find() {
    let _f = Fixture::new();
    let ro = open_session(false);
    // Token objects need a read/write session.
    assert_eq!(
        create(ro, &mut cert(b"c1")).unwrap_err(),
        CKR_SESSION_READ_ONLY
    );
    let rw = open_session(true);
    let c = create(rw, &mut cert(b"c1")).unwrap();
    assert_eq!(get_attr(rw, c, CKA_PRIVATE).1.unwrap(), vec![0]);
    assert_eq!(
        get_attr(rw, c, CKA_VALUE).1.unwrap(),
        b"\x30\x03\x02\x01\x01"
    );
    let mut data = Tpl::new()
        .ulong(CKA_CLASS, CKO_DATA)
        .bool(CKA_TOKEN, true)
        .bytes(CKA_LABEL, b"d")
        .bytes(CKA_VALUE, b"hello");
    let d = create(rw, &mut data).unwrap();
    // A certificate without CKA_VALUE is incomplete.
    let mut bad = Tpl::new()
        .ulong(CKA_CLASS, CKO_CERTIFICATE)
        .ulong(CKA_CERTIFICATE_TYPE, CKC_X_509);
    assert_eq!(create(rw, &mut bad).unwrap_err(), CKR_TEMPLATE_INCOMPLETE);
    // Find by class and by id.
    assert_eq!(
        find(ro, &mut Tpl::new().ulong(CKA_CLASS, CKO_CERTIFICATE)),
        vec![c]
    );
    assert_eq!(find(ro, &mut Tpl::new().bytes(CKA_ID, b"c1")), vec![c]);
    let mut all = find(ro, &mut Tpl::new());
    all.sort();
    assert_eq!(all, vec![c, d]);
    // Another process sees the token objects: finalise and initialise again.
    let mut n: CK_ULONG = 0;
    assert_eq!(
        call!(C_FindObjects, ro, std::ptr::null_mut(), 0, &mut n),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // Private key: invisible until login.
    assert_eq!(login(rw, CKU_USER, USER_PIN), CKR_OK);
    let (k, p) = import_rsa(rw, rsa_key(), true, b"c1");
    let keys = find(
        ro,
        &mut Tpl::new()
            .ulong(CKA_CLASS, CKO_PRIVATE_KEY)
            .bytes(CKA_ID, b"c1"),
    );
    assert_eq!(keys, vec![k]);
    assert_eq!(call!(C_Logout, rw), CKR_OK);
    assert!(find(ro, &mut Tpl::new().ulong(CKA_CLASS, CKO_PRIVATE_KEY)).is_empty());
    assert_eq!(get_attr(ro, k, CKA_LABEL).0, CKR_OBJECT_HANDLE_INVALID);
    assert_eq!(
        find(ro, &mut Tpl::new().ulong(CKA_CLASS, CKO_PUBLIC_KEY)),
        vec![p]
    );
    // Destroy: token object gone for everyone.
    assert_eq!(call!(C_DestroyObject, ro, d), CKR_SESSION_READ_ONLY);
    assert_eq!(call!(C_DestroyObject, rw, d), CKR_OK);
    assert_eq!(call!(C_DestroyObject, rw, d), CKR_OBJECT_HANDLE_INVALID);
    assert!(find(ro, &mut Tpl::new().ulong(CKA_CLASS, CKO_DATA)).is_empty());

    // Re-initialise: the token objects come back from the cells, with the key usable.
    let cfg = _f.bed.config_path.clone();
    assert_eq!(call!(C_Finalize, std::ptr::null_mut()), CKR_OK);
    assert_eq!(initialize(&cfg, CKF_OS_LOCKING_OK), CKR_OK);
    let h = open_session(false);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    let keys = find(
        h,
        &mut Tpl::new()
            .ulong(CKA_CLASS, CKO_PRIVATE_KEY)
            .bytes(CKA_ID, b"c1"),
    );
    assert_eq!(keys.len(), 1);
    let sig = sign(h, &mut mech(CKM_SHA256_RSA_PKCS), keys[0], b"persisted").unwrap();
    rsa_key()
        .to_public_key()
        .pkcs1v15_verify::<Sha256>(b"persisted", &sig)
        .unwrap();
    assert_eq!(
        find(h, &mut Tpl::new().ulong(CKA_CLASS, CKO_CERTIFICATE)).len(),
        1
    );
}

#[test]
fn copy_session_key_to_token() {
    let f = Fixture::new();
    let rw = open_session(true);
    assert_eq!(login(rw, CKU_USER, USER_PIN), CKR_OK);
    let (k, _) = import_rsa(rw, rsa_key(), false, b"s1");
    assert_eq!(get_attr(rw, k, CKA_TOKEN).1.unwrap(), vec![0]);
    // Copy to the token (what keytool does); the copy shares the key material.
    let mut t = Tpl::new().bool(CKA_TOKEN, true).bytes(CKA_LABEL, b"copied");
    let (tp, tn) = t.ptr();
    let mut c = 0;
    assert_eq!(call!(C_CopyObject, rw, k, tp, tn, &mut c), CKR_OK);
    assert_eq!(get_attr(rw, c, CKA_TOKEN).1.unwrap(), vec![1]);
    assert_eq!(get_attr(rw, c, CKA_LABEL).1.unwrap(), b"copied");
    // A copy may not change the modulus.
    let mut bad = Tpl::new().bytes(CKA_MODULUS, &[1]);
    let (tp, tn) = bad.ptr();
    assert_eq!(
        call!(C_CopyObject, rw, k, tp, tn, &mut c),
        CKR_ATTRIBUTE_READ_ONLY
    );
    // The cells hold the shared fragments without a lease from now on.
    let keys = f.bed.cluster().list_keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].lease_remaining_secs, None);
    // Destroying the session original keeps the token copy working.
    assert_eq!(call!(C_DestroyObject, rw, k), CKR_OK);
    let sig = sign(rw, &mut mech(CKM_SHA256_RSA_PKCS), c, b"copy").unwrap();
    rsa_key()
        .to_public_key()
        .pkcs1v15_verify::<Sha256>(b"copy", &sig)
        .unwrap();
    // Session objects go with their session; token objects stay.
    let s2 = open_session(false);
    let (k2, _) = import_rsa(s2, rsa_key(), false, b"s2");
    assert_eq!(call!(C_CloseSession, s2), CKR_OK);
    assert_eq!(get_attr(rw, k2, CKA_LABEL).0, CKR_OBJECT_HANDLE_INVALID);
    assert_eq!(get_attr(rw, c, CKA_LABEL).0, CKR_OK);
    // Non-copyable objects.
    let mut d = Tpl::new()
        .ulong(CKA_CLASS, CKO_DATA)
        .bool(CKA_COPYABLE, false);
    let (tp, tn) = d.ptr();
    let mut o = 0;
    assert_eq!(call!(C_CreateObject, rw, tp, tn, &mut o), CKR_OK);
    let mut t = Tpl::new();
    let (tp, tn) = t.ptr();
    assert_eq!(
        call!(C_CopyObject, rw, o, tp, tn, &mut c),
        CKR_ACTION_PROHIBITED
    );
}
