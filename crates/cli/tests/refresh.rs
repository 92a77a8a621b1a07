//! Proactive refresh against an in-process 3-cell cluster, through the client's driver and
//! the `keyfrag` binary: every cell's stored share changes while the public key does not and
//! signatures verify; shares of two epochs do not combine; a cell stopped (or the client
//! gone) at each step leaves a working key and the next refresh completes; signing from 8
//! threads during refreshes never fails and never mixes epochs.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};

use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use keyfrag_cli::testbed::{Testbed, TestbedOptions};
use keyfrag_client::cluster::{FaultAction, RefreshPoint};
use keyfrag_client::{Cluster, ErrorKind, KeySummary, UserKind};
use keyfrag_core::hash::HashAlg;
use keyfrag_core::padding::pkcs1v15;
use keyfrag_core::rsa_combine::{blind, combine};
use keyfrag_core::rsa_partial::rsa_partial;
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_core::rsa_share::{RsaShare, split_exponent};
use keyfrag_server::CellConfig;
use keyfrag_server::sealing::MasterKey;
use rsa::Pkcs1v15Sign;
use rsa::sha2::Sha256;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};

const MESSAGE: &[u8] = b"keyfrag: signed across a refresh";

/// Every point between two steps of a run, in order.
const STEPS: [RefreshPoint; 4] = [
    RefreshPoint::BeforeDeal,
    RefreshPoint::BeforePrepare,
    RefreshPoint::BeforeCommit,
    RefreshPoint::BeforeFinalize,
];

/// A hook that abandons the run at `point`, as a client that crashed there would.
fn abandon_at(point: RefreshPoint) -> impl Fn(RefreshPoint) -> FaultAction + Sync {
    move |at| {
        if at == point {
            FaultAction::Abandon
        } else {
            FaultAction::Continue
        }
    }
}

struct Key {
    uid: String,
    public: RsaPublic,
    rsa: rsa::PublicKey,
}

fn rsa_key() -> rsa::PrivateKey {
    rsa::PrivateKey::new(&mut UnwrapErr(SysRng), 1024).expect("rsa key")
}

/// Import `key` as three fragments (a token key unless `lease`).
fn import(bed: &Testbed, key: &rsa::PrivateKey, lease: Option<u64>) -> Key {
    let n = key.n().to_be_bytes_trimmed_vartime();
    let e = key.e().to_be_bytes_trimmed_vartime();
    let public = RsaPublic::new(&n, &e).unwrap();
    let shares = split_exponent(&key.d().to_be_bytes_trimmed_vartime(), 1024, 3).unwrap();
    let uid = keyfrag_core::random::uid_hex().unwrap();
    bed.cluster()
        .put_rsa_key(&uid, &n, &e, shares, lease)
        .expect("store shares");
    Key {
        uid,
        public,
        rsa: key.to_public_key(),
    }
}

/// A PKCS#1 v1.5 / SHA-256 signature through the cells, checked by `rsa`.
fn sign_and_verify(cluster: &Cluster, key: &Key) -> u64 {
    let h = HashAlg::Sha256.digest(MESSAGE);
    let em = pkcs1v15::sign_pad(&HashAlg::Sha256.digest_info(&h), key.public.size()).unwrap();
    let blinded = blind(&key.public, &em).unwrap();
    let partials = cluster
        .rsa_partials_at(&key.uid, &blinded.input)
        .expect("partials");
    for c in &partials.cells {
        assert_eq!(c.epoch, partials.epoch, "one epoch per operation");
    }
    let sig = combine(&key.public, &blinded, &partials.outputs()).expect("combined signature");
    key.rsa
        .verify(Pkcs1v15Sign::new::<Sha256>(), &h, sig.expose())
        .expect("rsa verifies the signature");
    partials.epoch
}

/// Every share cell `i` stores for `uid`, opened with the cell's master key:
/// (epoch, pending, share), in epoch order; and the stored modulus.
fn stored(bed: &Testbed, i: usize, uid: &str) -> (Vec<(u64, bool, RsaShare)>, Vec<u8>) {
    let config = CellConfig::load(&bed.provisioned.cell_configs[i]).unwrap();
    let master = MasterKey::load(&config.master_key_file).unwrap();
    let token = &config.tokens[0].id;
    let db = rusqlite::Connection::open(bed.cell_database(i)).unwrap();
    let mut stmt = db
        .prepare(
            "SELECT epoch, pending, format, sealed_share FROM shares
             WHERE token_id = ?1 AND uid = ?2 ORDER BY epoch",
        )
        .unwrap();
    let rows = stmt
        .query_map([token, uid], |r| {
            Ok((
                r.get::<_, u64>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .map(|(epoch, pending, format, sealed)| {
            let share = master
                .open_share(token, uid, epoch, format, &sealed)
                .unwrap();
            (epoch, pending, share)
        })
        .collect();
    let modulus = db
        .query_row(
            "SELECT modulus FROM keys WHERE token_id = ?1 AND uid = ?2",
            [token, uid],
            |r| r.get(0),
        )
        .unwrap();
    (rows, modulus)
}

/// Every cell at `epoch` with nothing pending or left to finalize.
fn assert_settled(cluster: &Cluster, uid: &str, epoch: u64) {
    let all: Vec<KeySummary> = cluster.key_status(uid).unwrap();
    for k in &all {
        assert_eq!(k.epoch, epoch, "{k:?}");
        assert!(k.pending.is_none() && k.previous_epoch.is_none(), "{k:?}");
    }
}

fn logged_in(bed: &Testbed) -> Cluster {
    let cluster = bed.cluster();
    cluster.login(UserKind::User, "1234").unwrap();
    cluster
}

#[test]
fn a_refresh_changes_every_stored_share_and_keeps_the_public_key() {
    let bed = Testbed::start(TestbedOptions::default());
    let key = import(&bed, &rsa_key(), None);
    let signer = logged_in(&bed);
    assert_eq!(sign_and_verify(&signer, &key), 1);
    let before: Vec<_> = (0..3).map(|i| stored(&bed, i, &key.uid)).collect();

    let outcome = bed.cluster().refresh_key(&key.uid).expect("refresh");
    assert_eq!((outcome.from_epoch, outcome.epoch), (1, 2));
    assert!(outcome.recovered.is_none());
    assert_settled(&bed.cluster(), &key.uid, 2);

    for (i, (old_rows, old_modulus)) in before.iter().enumerate() {
        let (rows, modulus) = stored(&bed, i, &key.uid);
        assert_eq!(rows.len(), 1, "cell {i}: only the new share is stored");
        assert_eq!((rows[0].0, rows[0].1), (2, false));
        assert_ne!(rows[0].2, old_rows[0].2, "cell {i}: its share changed");
        assert_eq!(
            &modulus, old_modulus,
            "cell {i}: the public key is unchanged"
        );
    }
    assert_eq!(sign_and_verify(&signer, &key), 2);

    // And again: epochs keep counting, every share keeps changing.
    let outcome = bed.cluster().refresh_key(&key.uid).expect("second refresh");
    assert_eq!(outcome.epoch, 3);
    assert_eq!(sign_and_verify(&signer, &key), 3);
}

#[test]
fn shares_from_before_and_after_a_refresh_do_not_combine() {
    let bed = Testbed::start(TestbedOptions::default());
    let key = import(&bed, &rsa_key(), None);
    let old: Vec<RsaShare> = (0..3)
        .map(|i| stored(&bed, i, &key.uid).0[0].2.clone())
        .collect();
    bed.cluster().refresh_key(&key.uid).expect("refresh");
    let new: Vec<RsaShare> = (0..3)
        .map(|i| stored(&bed, i, &key.uid).0[0].2.clone())
        .collect();
    let modulus = key.public.modulus();
    let x = vec![0x5au8; 100];
    let op = |shares: [&RsaShare; 3]| {
        let blinded = blind(&key.public, &x).unwrap();
        let partials: Vec<Vec<u8>> = shares
            .iter()
            .map(|s| rsa_partial(&modulus, &blinded.input, s).unwrap())
            .collect();
        combine(&key.public, &blinded, &partials).map(|y| y.expose().to_vec())
    };
    let whole = op([&new[0], &new[1], &new[2]]).expect("the new shares form the key");
    assert_eq!(op([&old[0], &old[1], &old[2]]).unwrap(), whole);
    // A thief with cells a and b before the refresh and cell c after has nothing.
    for mixed in [
        [&old[0], &old[1], &new[2]],
        [&new[0], &old[1], &old[2]],
        [&old[0], &new[1], &new[2]],
    ] {
        assert_eq!(op(mixed).unwrap_err(), keyfrag_core::Error::VerifyFailed);
    }
}

/// Refresh `key` while the hook stops cell b at `point` (the driver waits until it is down).
fn refresh_with_cell_b_stopped_at(
    bed: &mut Testbed,
    key: &Key,
    point: RefreshPoint,
) -> keyfrag_client::ClientError {
    let cluster = bed.cluster();
    let (reached, wait_reached) = mpsc::channel::<()>();
    let (stopped, wait_stopped) = mpsc::channel::<()>();
    let wait_stopped = Mutex::new(wait_stopped);
    let reached = Mutex::new(reached);
    let hook = move |at: RefreshPoint| {
        if at == point {
            reached.lock().unwrap().send(()).unwrap();
            wait_stopped.lock().unwrap().recv().unwrap();
        }
        FaultAction::Continue
    };
    std::thread::scope(|s| {
        let run = s.spawn(|| cluster.refresh_key_with_faults(&key.uid, &hook));
        wait_reached.recv().unwrap();
        bed.stop_cell(1);
        stopped.send(()).unwrap();
        run.join().unwrap().expect_err("cell b is down")
    })
}

#[test]
fn a_cell_stopped_at_each_step_leaves_a_working_key_and_the_next_refresh_completes() {
    let mut bed = Testbed::start(TestbedOptions::default());
    let key = import(&bed, &rsa_key(), None);
    let signer = logged_in(&bed);
    let mut epoch = 1;
    for point in STEPS {
        let err = refresh_with_cell_b_stopped_at(&mut bed, &key, point);
        assert_eq!(err.kind, ErrorKind::Device, "{point:?}: {}", err.message);
        assert!(err.message.contains("cell-b"), "{point:?}: {}", err.message);
        bed.start_cell(1);
        // Usable at once, before anything is repaired: at the epoch every cell serves.
        let served = sign_and_verify(&signer, &key);
        let committed = matches!(point, RefreshPoint::BeforeFinalize);
        assert_eq!(
            served,
            if committed { epoch + 1 } else { epoch },
            "{point:?}"
        );
        let outcome = bed
            .cluster()
            .refresh_key(&key.uid)
            .unwrap_or_else(|e| panic!("{point:?}: the next refresh: {}", e.message));
        // What was left is finished (rolled forward) or undone, then a new run completes.
        let rolled = matches!(
            point,
            RefreshPoint::BeforeCommit | RefreshPoint::BeforeFinalize
        );
        let expected = if rolled { epoch + 2 } else { epoch + 1 };
        assert_eq!(
            outcome.epoch, expected,
            "{point:?}: {:?}",
            outcome.recovered
        );
        match point {
            RefreshPoint::BeforeDeal => assert!(outcome.recovered.is_none()),
            RefreshPoint::BeforePrepare => {
                let r = outcome.recovered.as_deref().unwrap_or_default();
                assert!(r.starts_with("undid"), "{r}");
            }
            _ => {
                let r = outcome.recovered.as_deref().unwrap_or_default();
                assert!(r.starts_with("rolled"), "{r}");
            }
        }
        epoch = expected;
        assert_settled(&bed.cluster(), &key.uid, epoch);
        assert_eq!(sign_and_verify(&signer, &key), epoch);
    }
}

#[test]
fn a_client_gone_at_each_step_leaves_a_working_key_and_the_next_refresh_completes() {
    let bed = Testbed::start(TestbedOptions::default());
    let key = import(&bed, &rsa_key(), None);
    let signer = logged_in(&bed);
    let mut epoch = 1;
    for point in STEPS {
        let err = bed
            .cluster()
            .refresh_key_with_faults(&key.uid, &abandon_at(point))
            .expect_err("abandoned");
        assert!(err.message.contains("abandoned"), "{}", err.message);
        sign_and_verify(&signer, &key);
        let outcome = bed
            .cluster()
            .refresh_key(&key.uid)
            .expect("the next refresh");
        // A run abandoned before PREPARE left nothing stored; after it, every cell holds
        // the run, which rolls forward.
        let rolled = !matches!(
            point,
            RefreshPoint::BeforeDeal | RefreshPoint::BeforePrepare
        );
        epoch += if rolled { 2 } else { 1 };
        assert_eq!(outcome.epoch, epoch, "{point:?}: {:?}", outcome.recovered);
        assert_eq!(outcome.recovered.is_some(), rolled, "{point:?}");
        assert_settled(&bed.cluster(), &key.uid, epoch);
        assert_eq!(sign_and_verify(&signer, &key), epoch);
    }
}

#[test]
fn signing_from_8_threads_during_refreshes_never_fails_or_mixes_epochs() {
    let bed = Testbed::start(TestbedOptions::default());
    let key = import(&bed, &rsa_key(), None);
    let signer = logged_in(&bed);
    let refresher = bed.cluster();
    let done = AtomicBool::new(false);
    const REFRESHES: u64 = 6;
    let seen: Vec<Vec<u64>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut epochs = Vec::new();
                    // At least a few signatures each, and on until the refreshes are over.
                    while !done.load(Ordering::Acquire) || epochs.len() < 3 {
                        epochs.push(sign_and_verify(&signer, &key));
                    }
                    epochs
                })
            })
            .collect();
        for _ in 0..REFRESHES {
            refresher
                .refresh_key(&key.uid)
                .expect("refresh while signing");
        }
        done.store(true, Ordering::Release);
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let all: Vec<u64> = seen.iter().flatten().copied().collect();
    assert!(all.iter().all(|e| (1..=REFRESHES + 1).contains(e)));
    assert_settled(&refresher, &key.uid, REFRESHES + 1);
    assert_eq!(sign_and_verify(&signer, &key), REFRESHES + 1);
    println!(
        "{} signatures over epochs {:?}",
        all.len(),
        all.iter().collect::<std::collections::BTreeSet<_>>()
    );
}

fn keyfrag(bed: &Testbed, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_keyfrag"))
        .args(args)
        .env("KEYFRAG_CONF", &bed.config_path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn keyfrag_refresh_all_skips_session_keys_and_keys_list_shows_epochs() {
    let bed = Testbed::start(TestbedOptions::default());
    let private = rsa_key();
    let token_keys: Vec<Key> = (0..3).map(|_| import(&bed, &private, None)).collect();
    let session = import(&bed, &private, Some(600));

    let (ok, out, err) = keyfrag(&bed, &["refresh", "--all"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("refreshed 3 of 3 keys"), "{out}");
    for k in &token_keys {
        assert!(out.contains(&format!("{}  epoch 1 -> 2", k.uid)), "{out}");
    }
    let (ok, out, err) = keyfrag(&bed, &["keys", "list"]);
    assert!(ok, "{err}");
    for k in &token_keys {
        let line = out.lines().find(|l| l.starts_with(&k.uid)).unwrap();
        assert!(line.trim_end().ends_with(" 2"), "{line}");
    }
    let line = out.lines().find(|l| l.starts_with(&session.uid)).unwrap();
    assert!(line.trim_end().ends_with(" 1"), "{line}");

    let (ok, _, err) = keyfrag(&bed, &["refresh", "--key", &session.uid]);
    assert!(!ok);
    assert!(err.contains("session key"), "{err}");
    let (ok, out, err) = keyfrag(&bed, &["refresh", "--key", &token_keys[0].uid]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("epoch 2 -> 3"), "{out}");
    let (ok, _, err) = keyfrag(&bed, &["refresh"]);
    assert!(!ok, "{err}");
    let (ok, _, err) = keyfrag(&bed, &["refresh", "--all", "--every", "5w"]);
    assert!(!ok && err.contains("duration"), "{err}");

    // An unfinished refresh shows per-cell epochs until the next refresh completes it.
    bed.cluster()
        .refresh_key_with_faults(
            &token_keys[1].uid,
            &abandon_at(RefreshPoint::BeforeFinalize),
        )
        .unwrap_err();
    let (_, out, _) = keyfrag(&bed, &["keys", "list"]);
    let line = out
        .lines()
        .find(|l| l.starts_with(&token_keys[1].uid))
        .unwrap();
    assert!(line.trim_end().ends_with("3/3/3*"), "{line}");
    assert!(out.contains("refresh is unfinished"), "{out}");
}
