//! The client against a real in-process 3-cell cluster: an imported key used by fragments,
//! a stopped cell, a cell whose metadata differs, PIN refusals.

use std::time::{Duration, Instant};

use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use keyfrag_cli::testbed::{Testbed, TestbedOptions};
use keyfrag_client::{Attr, ErrorKind, ObjectRecord, UserKind};
use keyfrag_core::rsa_combine::{blind, combine};
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_core::rsa_share::split_exponent;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};

fn rsa_key(bits: usize) -> rsa::PrivateKey {
    rsa::PrivateKey::new(&mut UnwrapErr(SysRng), bits).expect("rsa key")
}

/// Import `key` as 3 fragments under a fresh uid; returns (uid, public key).
fn import(bed: &Testbed, key: &rsa::PrivateKey) -> (String, RsaPublic) {
    let cluster = bed.cluster();
    let n = key.n().to_be_bytes_trimmed_vartime();
    let e = key.e().to_be_bytes_trimmed_vartime();
    let d = key.d().to_be_bytes_trimmed_vartime();
    let public = RsaPublic::new(&n, &e).expect("public key");
    let shares = split_exponent(&d, public.bits(), 3).expect("split");
    let uid = keyfrag_core::random::uid_hex().unwrap();
    cluster
        .put_rsa_key(&uid, &n, &e, shares, None)
        .expect("store shares");
    (uid, public)
}

fn private_op(
    cluster: &keyfrag_client::Cluster,
    uid: &str,
    public: &RsaPublic,
    x: &[u8],
) -> keyfrag_client::Result<Vec<u8>> {
    let blinded = blind(public, x).expect("blind");
    let partials = cluster.rsa_partials(uid, &blinded.input)?;
    let y = combine(public, &blinded, &partials).expect("combined result verifies");
    Ok(y.expose().to_vec())
}

#[test]
fn imported_key_signs_by_fragments_and_matches_the_whole_key() {
    let bed = Testbed::start(TestbedOptions::default());
    let key = rsa_key(2048);
    let (uid, public) = import(&bed, &key);
    let cluster = bed.cluster();
    cluster.login(UserKind::User, "1234").expect("user login");
    let x = [0x42u8; 200];
    let y = private_op(&cluster, &uid, &public, &x).expect("partials");
    let expected = rsa::hazmat::rsa_decrypt_and_check(
        &key,
        None::<&mut UnwrapErr<SysRng>>,
        &rsa::BoxedUint::from_be_slice(&x, 2048).unwrap(),
    )
    .unwrap();
    assert_eq!(y, expected.to_be_bytes().to_vec());
    let keys = cluster.list_keys().expect("list keys");
    assert!(
        keys.iter()
            .any(|k| k.uid == uid && k.bits == 2048 && k.epoch == 1)
    );
}

#[test]
fn partials_need_a_user_login_and_a_right_pin() {
    let bed = Testbed::start(TestbedOptions::default());
    let (uid, public) = import(&bed, &rsa_key(1024));
    let cluster = bed.cluster();
    let err = private_op(&cluster, &uid, &public, &[7u8; 16]).unwrap_err();
    assert_eq!(err.kind, ErrorKind::UserNotLoggedIn);
    let err = cluster.login(UserKind::User, "9999").unwrap_err();
    assert_eq!(err.kind, ErrorKind::PinIncorrect);
    assert!(cluster.token_status().unwrap().user_pin_count_low);
    cluster.login(UserKind::User, "1234").expect("right PIN");
    private_op(&cluster, &uid, &public, &[7u8; 16]).expect("after login");
    cluster.logout();
    let err = private_op(&cluster, &uid, &public, &[7u8; 16]).unwrap_err();
    assert_eq!(err.kind, ErrorKind::UserNotLoggedIn);
}

#[test]
fn stopped_cell_fails_fast_and_recovers_after_restart() {
    let mut bed = Testbed::start(TestbedOptions::default());
    let (uid, public) = import(&bed, &rsa_key(1024));
    let cluster = bed.cluster();
    cluster.login(UserKind::User, "1234").unwrap();
    private_op(&cluster, &uid, &public, &[9u8; 32]).expect("all cells up");

    bed.stop_cell(1);
    let started = Instant::now();
    let err = private_op(&cluster, &uid, &public, &[9u8; 32]).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Device);
    assert!(err.message.contains("cell-b"), "{}", err.message);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    bed.start_cell(1);
    // Logins are stored by the cells, so the restarted cell still accepts this one.
    private_op(&cluster, &uid, &public, &[9u8; 32]).expect("works after restart");
}

#[test]
fn a_cell_with_different_metadata_is_refused_by_name() {
    let mut bed = Testbed::start(TestbedOptions::default());
    let cluster = bed.cluster();
    let object = ObjectRecord {
        id: keyfrag_core::random::uid_hex().unwrap(),
        key_uid: None,
        attrs: vec![Attr {
            kind: 3,
            value: b"label".to_vec(),
        }],
    };
    let hash = cluster.write_objects(vec![object.clone()], vec![]).unwrap();
    let (loaded_hash, objects) = cluster.load_objects().unwrap();
    assert_eq!((loaded_hash, objects), (hash, vec![object]));

    bed.stop_cell(2);
    let db = rusqlite::Connection::open(bed.cell_database(2)).unwrap();
    let changed = db
        .execute(
            "UPDATE objects SET attrs = replace(attrs, 'bGFiZWw', 'TGFiZWw')",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(db);
    bed.start_cell(2);

    let err = cluster.load_objects().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Device);
    assert!(err.message.contains("cell-c"), "{}", err.message);
    let err = cluster.token_status().unwrap_err();
    assert!(err.message.contains("cell-c"), "{}", err.message);
}

#[test]
fn failed_store_on_one_cell_leaves_no_share_anywhere() {
    let mut bed = Testbed::start(TestbedOptions::default());
    bed.stop_cell(2);
    let key = rsa_key(1024);
    let cluster = bed.cluster();
    let n = key.n().to_be_bytes_trimmed_vartime();
    let e = key.e().to_be_bytes_trimmed_vartime();
    let shares = split_exponent(&key.d().to_be_bytes_trimmed_vartime(), 1024, 3).unwrap();
    let err = cluster
        .put_rsa_key("0123456789abcdef0123456789abcdef", &n, &e, shares, None)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Device);
    bed.start_cell(2);
    assert!(cluster.list_keys().unwrap().is_empty());
}
