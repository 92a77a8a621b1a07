//! Refresh seen through the C ABI: CKA_KEYFRAG_EPOCH (read-only, private keys, from the
//! cells), and 8 threads signing with the same key while it is refreshed again and again —
//! every C_Sign succeeds and every signature verifies with `rsa` (a result combined from
//! partials of two epochs would fail the module's own check and surface as an error).
#![allow(clippy::macro_metavars_in_unsafe)] // `call!` wraps calls through the C function list

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use cryptoki_sys::*;
use rsa::Pkcs1v15Sign;
use rsa::sha2::{Digest, Sha256};

/// include/keyfrag.h
const CKA_KEYFRAG_EPOCH: CK_ATTRIBUTE_TYPE = (0x8000_0000 | 0x4B46_0000) + 1;

fn epoch(h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> CK_ULONG {
    let (rv, v) = get_attr(h, key, CKA_KEYFRAG_EPOCH);
    assert_eq!(rv, CKR_OK);
    let v = v.unwrap();
    assert_eq!(v.len(), size_of::<CK_ULONG>());
    CK_ULONG::from_ne_bytes(v.try_into().unwrap())
}

/// The uid of the only key the cells hold.
fn only_key_uid(f: &Fixture) -> String {
    let keys = f.bed.cluster().list_keys().unwrap();
    assert_eq!(keys.len(), 1);
    keys[0].uid.clone()
}

#[test]
fn the_epoch_attribute_is_read_only_and_follows_refreshes() {
    let f = Fixture::new();
    let h = open_session(true);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    let (private, public) = import_rsa(h, rsa_key(), true, b"e1");
    assert_eq!(epoch(h, private), 1);
    let (rv, _) = get_attr(h, public, CKA_KEYFRAG_EPOCH);
    assert_eq!(rv, CKR_ATTRIBUTE_TYPE_INVALID);

    let uid = only_key_uid(&f);
    for expected in 2..=3 {
        let outcome = f.bed.cluster().refresh_key(&uid).expect("refresh");
        assert_eq!(outcome.epoch, expected);
        assert_eq!(epoch(h, private), expected as CK_ULONG);
    }

    // Read-only: neither set nor given at creation, nor searchable.
    let mut t = Tpl::new().ulong(CKA_KEYFRAG_EPOCH, 9);
    let (tp, tn) = t.ptr();
    assert_eq!(
        call!(C_SetAttributeValue, h, private, tp, tn),
        CKR_ATTRIBUTE_READ_ONLY
    );
    let mut t = Tpl::new()
        .ulong(CKA_CLASS, CKO_PRIVATE_KEY)
        .ulong(CKA_KEY_TYPE, CKK_RSA)
        .ulong(CKA_KEYFRAG_EPOCH, 1);
    let (tp, tn) = t.ptr();
    let mut o = 0;
    assert_eq!(
        call!(C_CreateObject, h, tp, tn, &mut o),
        CKR_ATTRIBUTE_READ_ONLY
    );
    assert!(find(h, &mut Tpl::new().ulong(CKA_KEYFRAG_EPOCH, 3)).is_empty());
}

#[test]
fn signing_from_8_threads_during_refreshes_never_fails() {
    let f = Fixture::new();
    let h = open_session(true);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    let (private, _) = import_rsa(h, rsa_key(), true, b"s8");
    let uid = only_key_uid(&f);
    let public = rsa_key().to_public_key();
    let refresher = f.bed.cluster();
    let done = AtomicBool::new(false);
    const REFRESHES: u64 = 5;
    let signed: Vec<usize> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8u8)
            .map(|t| {
                let (done, public) = (&done, &public);
                s.spawn(move || {
                    let session = open_session(false);
                    let mut count = 0usize;
                    while !done.load(Ordering::Acquire) || count < 3 {
                        let data = [b"thread ".as_slice(), &[t], &count.to_be_bytes()].concat();
                        let mut m = mech(CKM_SHA256_RSA_PKCS);
                        let sig = sign(session, &mut m, private, &data)
                            .unwrap_or_else(|rv| panic!("thread {t}: C_Sign failed: {rv:#x}"));
                        public
                            .verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&data), &sig)
                            .expect("rsa verifies the signature");
                        count += 1;
                    }
                    assert_eq!(call!(C_CloseSession, session), CKR_OK);
                    count
                })
            })
            .collect();
        for _ in 0..REFRESHES {
            refresher.refresh_key(&uid).expect("refresh while signing");
        }
        done.store(true, Ordering::Release);
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(signed.iter().all(|&n| n >= 3), "{signed:?}");
    assert_eq!(epoch(h, private), (REFRESHES + 1) as CK_ULONG);
}
