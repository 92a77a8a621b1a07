//! C_GenerateKeyPair with the token's key pool (issue 4) against a 3-cell testbed
//! (cells-only RSA-1024): with pooled keys of the asked size the module takes one — no new
//! key appears on the cells, the pool shrinks by one, the objects refer to the pooled uid (a
//! session pair's key gets a lease) and C_Sign verifies; with an empty pool it generates. On a
//! customer token (card pinned, pool filled by the client as the customer party) the module
//! hands out the pooled customer key with CKA_KEYFRAG_CUSTOMER, and it signs.
#![allow(clippy::macro_metavars_in_unsafe)] // `call!` wraps calls through the C function list

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;

use common::*;
use cryptoki_sys::*;
use keyfrag_cli::testbed::{Testbed, TestbedOptions};
use keyfrag_client::admin::{AdminFile, customer_card, pin_customer_card};
use keyfrag_client::{Config, customer_file};
use keyfrag_core::customer::{CustomerSeed, KdfParams, RecoverySecret, SealedFragment};
use rsa::sha2::Sha256;

const BITS: CK_ULONG = 1024;

fn templates(token: bool) -> (Tpl, Tpl) {
    let public = Tpl::new()
        .ulong(CKA_CLASS, CKO_PUBLIC_KEY)
        .ulong(CKA_KEY_TYPE, CKK_RSA)
        .bool(CKA_TOKEN, token)
        .ulong(CKA_MODULUS_BITS, BITS)
        .bytes(CKA_PUBLIC_EXPONENT, &[1, 0, 1])
        .bool(CKA_VERIFY, true);
    let private = Tpl::new()
        .ulong(CKA_CLASS, CKO_PRIVATE_KEY)
        .ulong(CKA_KEY_TYPE, CKK_RSA)
        .bool(CKA_TOKEN, token)
        .bool(CKA_PRIVATE, true)
        .bool(CKA_SENSITIVE, true)
        .bool(CKA_SIGN, true);
    (public, private)
}

/// C_GenerateKeyPair (RSA-1024): (public, private) handles.
fn generate(h: CK_SESSION_HANDLE, token: bool) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let (mut public, mut private) = templates(token);
    let (pt, pn) = public.ptr();
    let (qt, qn) = private.ptr();
    let (mut hp, mut hq) = (0, 0);
    let mut m = mech(CKM_RSA_PKCS_KEY_PAIR_GEN);
    let rv = call!(
        C_GenerateKeyPair,
        h,
        &mut m,
        pt,
        pn,
        qt,
        qn,
        &mut hp,
        &mut hq
    );
    assert_eq!(rv, CKR_OK);
    (hp, hq)
}

/// C_Sign by the private key, verified by the `rsa` crate with the public object's n and e.
fn sign_verifies(h: CK_SESSION_HANDLE, public: CK_OBJECT_HANDLE, private: CK_OBJECT_HANDLE) {
    let msg = b"a key from the pool";
    let sig = sign(h, &mut mech(CKM_SHA256_RSA_PKCS), private, msg).unwrap();
    let n = get_attr(h, public, CKA_MODULUS).1.unwrap();
    let e = get_attr(h, public, CKA_PUBLIC_EXPONENT).1.unwrap();
    rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&n),
        rsa::BoxedUint::from_be_slice_vartime(&e),
    )
    .unwrap()
    .pkcs1v15_verify::<Sha256>(msg, &sig)
    .expect("rsa verifies the signature");
}

fn pool_uids(f: &Fixture) -> BTreeSet<String> {
    let pool = f.bed.cluster().pool_list().unwrap();
    pool.into_iter().map(|k| k.uid).collect()
}

fn cell_uids(f: &Fixture) -> BTreeSet<String> {
    let keys = f.bed.cluster().list_keys().unwrap();
    keys.into_iter().map(|k| k.uid).collect()
}

fn logged_in_rw() -> CK_SESSION_HANDLE {
    let h = open_session(true);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    h
}

#[test]
fn generation_takes_a_pooled_key_of_the_asked_size() {
    let f = Fixture::new();
    let never = AtomicBool::new(false);
    let mut out = Vec::new();
    keyfrag_cli::pool::fill(&f.bed.cluster(), 2, 1024, None, &never, &mut out).unwrap();
    let filled = pool_uids(&f);
    assert_eq!(filled.len(), 2);
    let h = logged_in_rw();

    // A token pair: its private object refers to a key that was in the pool.
    let (public, private) = generate(h, true);
    let left = pool_uids(&f);
    assert_eq!(left.len(), 1, "the pool shrinks by one");
    let taken: Vec<&String> = filled.difference(&left).collect();
    assert_eq!(cell_uids(&f), filled, "no key generated besides the pool's");
    let (_, objects) = f.bed.cluster().load_objects().unwrap();
    let bound: Vec<&str> = objects
        .iter()
        .filter_map(|o| o.key_uid.as_deref())
        .collect();
    assert_eq!(bound, vec![taken[0].as_str()]);
    sign_verifies(h, public, private);

    // A session pair takes the other one, under a lease as a generated session key.
    let (public, private) = generate(h, false);
    assert!(pool_uids(&f).is_empty());
    assert_eq!(cell_uids(&f), filled);
    let keys = f.bed.cluster().list_keys().unwrap();
    let session = keys.iter().find(|k| left.contains(&k.uid)).unwrap();
    assert!(session.lease_remaining_secs.is_some() && !session.pooled);
    sign_verifies(h, public, private);
}

#[test]
fn generation_with_an_empty_pool_generates() {
    let f = Fixture::new();
    let h = logged_in_rw();
    assert!(pool_uids(&f).is_empty());
    let (public, private) = generate(h, true);
    let keys = f.bed.cluster().list_keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].pooled);
    assert!(pool_uids(&f).is_empty());
    sign_verifies(h, public, private);
}

/// CKA_KEYFRAG_CUSTOMER (include/keyfrag.h).
const CKA_KEYFRAG_CUSTOMER: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 0x4B46_0000 | 2;

/// Finalises the module however the test ends.
struct Finalize;

impl Drop for Finalize {
    fn drop(&mut self) {
        let _ = call!(C_Finalize, std::ptr::null_mut());
    }
}

#[test]
fn a_customer_token_hands_out_its_pooled_customer_key() {
    let _guard = serial();
    let bed = Testbed::start(TestbedOptions::default());
    // The token's customer fragment, named in the config, its card pinned on every cell.
    let file = bed.dir.path().join("customer.kf");
    let seed = CustomerSeed::generate().unwrap();
    let recovery = RecoverySecret::generate().unwrap();
    let sealed = SealedFragment::seal(
        &seed,
        USER_PIN.as_bytes(),
        &recovery,
        KdfParams::insecure_for_tests(),
    )
    .unwrap();
    customer_file::create(&file, &sealed).unwrap();
    let mut config = Config::load(&bed.config_path).unwrap();
    config.tokens[0].customer_fragment = Some(file);
    std::fs::write(&bed.config_path, toml::to_string(&config).unwrap()).unwrap();
    let clients = AdminFile::load(&bed.provisioned.admin)
        .unwrap()
        .clients()
        .unwrap();
    let card = customer_card(&seed).unwrap();
    for (cell, pinned) in pin_customer_card(&clients, &config.tokens[0].label, &card) {
        pinned.unwrap_or_else(|e| panic!("pin on {cell}: {}", e.message));
    }
    // `keyfrag pool fill` with the customer party in the client (minutes at RSA-2048).
    let cluster = bed.cluster();
    let never = AtomicBool::new(false);
    let mut out = Vec::new();
    let added = keyfrag_cli::pool::fill(&cluster, 1, 1024, Some(&seed), &never, &mut out).unwrap();

    assert_eq!(initialize(&bed.config_path, CKF_OS_LOCKING_OK), CKR_OK);
    let _finalize = Finalize;
    let h = logged_in_rw();
    let (public, private) = generate(h, true);
    assert!(
        cluster.pool_list().unwrap().is_empty(),
        "the pooled key was taken"
    );
    let keys = cluster.list_keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].uid, added[0], "no key generated besides the pool's");
    assert_eq!(
        get_attr(h, private, CKA_KEYFRAG_CUSTOMER),
        (CKR_OK, Some(seed.fingerprint().to_vec()))
    );
    sign_verifies(h, public, private);
}
