//! Proactive refresh on three in-process cells with relay identities, driven step by step
//! through their routers (the client's driver is tested in crates/cli/tests/refresh.rs):
//! every stored share changes and the key does not; the epochs a cell serves around COMMIT
//! and FINALIZE; idempotent steps; what COMMIT and ABORT refuse; session keys; and a
//! version-1 database migrated forward on open.

mod common;

use axum::http::StatusCode;
use common::*;
use keyfrag_core::relay::{Envelope, PartyKeys};
use keyfrag_core::rsa_combine::{blind, combine};
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_core::rsa_share::{RsaShare, split_exponent};
use keyfrag_server::relay_identity::ClusterFile;
use keyfrag_server::routes::now_secs;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde_json::{Value, json};

const NAMES: [&str; 3] = ["cell-a", "cell-b", "cell-c"];

struct Bed {
    cells: Vec<TestCell>,
    users: Vec<String>,
    uid: String,
    public: RsaPublic,
    modulus: Vec<u8>,
}

fn random_key() -> rsa::PrivateKey {
    rsa::PrivateKey::new(
        &mut getrandom::rand_core::UnwrapErr(getrandom::SysRng),
        1024,
    )
    .unwrap()
}

/// Three cells that know each other, token A initialised and logged in on each, and one RSA
/// key stored as three shares (token key unless `lease`).
async fn bed(lease: Option<u64>) -> Bed {
    let cards: Vec<_> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| PartyKeys::from_seed(&[i as u8 + 1; 32]).card(n).unwrap())
        .collect();
    let toml = ClusterFile::from_cards(&cards).to_toml();
    let cells: Vec<TestCell> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| TestCell::with_relay(n, [i as u8 + 1; 32], &toml))
        .collect();
    let key = random_key();
    let modulus = key.n().as_ref().to_be_bytes_trimmed_vartime().into_vec();
    let public = RsaPublic::new(&modulus, &[1, 0, 1]).unwrap();
    let shares = split_exponent(&key.d().to_be_bytes(), 1024, 3).unwrap();
    let uid = keyfrag_core::random::uid_hex().unwrap();
    let mut users = Vec::new();
    for (cell, share) in cells.iter().zip(&shares) {
        cell.init_token().await;
        users.push(cell.login("user", USER_PIN).await.unwrap());
        let body = put_body(&modulus, share.negative, share.magnitude.expose(), lease);
        let (s, b) = cell.a("PUT", &format!("/v1/keys/{uid}"), Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    Bed {
        cells,
        users,
        uid,
        public,
        modulus,
    }
}

fn session() -> String {
    keyfrag_core::random::uid_hex().unwrap()
}

fn list(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| keyfrag_proto::b64::decode(e.as_str().unwrap()).unwrap())
        .collect()
}

fn b64_list(items: &[Vec<u8>]) -> Value {
    json!(items.iter().map(|i| b64(i)).collect::<Vec<_>>())
}

impl Bed {
    async fn step(&self, i: usize, step: &str, body: Value) -> (StatusCode, Value) {
        let path = format!("/v1/keys/{}/refresh/{step}", self.uid);
        self.cells[i].a("POST", &path, Some(body)).await
    }

    /// DEAL on every cell; each cell's envelopes.
    async fn deal(&self, session: &str, epoch: u64) -> Vec<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for i in 0..3 {
            let body = json!({"session": session, "epoch": epoch, "parties": NAMES});
            let (s, b) = self.step(i, "deal", body).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            assert_eq!(b["modulus"], b64(&self.modulus));
            out.push(list(&b["envelopes"]));
        }
        out
    }

    /// PREPARE on cell `i` with the envelopes addressed to it.
    async fn prepare(
        &self,
        i: usize,
        session: &str,
        deals: &[Vec<Vec<u8>>],
    ) -> (StatusCode, Value) {
        let inbox: Vec<Vec<u8>> = deals
            .iter()
            .flatten()
            .filter(|e| Envelope::from_bytes(e).unwrap().header().receiver == NAMES[i])
            .cloned()
            .collect();
        let body = json!({"session": session, "envelopes": b64_list(&inbox)});
        self.step(i, "prepare", body).await
    }

    /// DEAL and PREPARE everywhere; every cell's check.
    async fn prepared(&self, session: &str, epoch: u64) -> Vec<Vec<u8>> {
        let deals = self.deal(session, epoch).await;
        let mut checks = Vec::new();
        for i in 0..3 {
            let (s, b) = self.prepare(i, session, &deals).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            checks.push(keyfrag_proto::b64::decode(b["check"].as_str().unwrap()).unwrap());
        }
        checks
    }

    async fn commit(&self, i: usize, session: &str, checks: &[Vec<u8>]) -> (StatusCode, Value) {
        let body = json!({"session": session, "checks": b64_list(checks)});
        self.step(i, "commit", body).await
    }

    async fn finalize(&self, i: usize, session: &str) -> (StatusCode, Value) {
        self.step(i, "finalize", json!({ "session": session }))
            .await
    }

    async fn summary(&self, i: usize) -> Value {
        let (s, b) = self.cells[i]
            .a("GET", &format!("/v1/keys/{}", self.uid), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }

    async fn partial(&self, i: usize, input: &[u8], epoch: Option<u64>) -> (StatusCode, Value) {
        let path = format!("/v1/keys/{}/rsa-partial", self.uid);
        let body = json!({"input": b64(input), "epoch": epoch});
        self.cells[i]
            .call("POST", &path, Some(KEY_A), Some(&self.users[i]), Some(body))
            .await
    }

    /// x^d through the cells, each answering at its epoch in `epochs`.
    async fn private_op(&self, x: &[u8], epochs: [u64; 3]) -> keyfrag_core::Result<Vec<u8>> {
        let blinded = blind(&self.public, x).unwrap();
        let mut partials = Vec::new();
        for (i, e) in epochs.into_iter().enumerate() {
            let (s, b) = self.partial(i, &blinded.input, Some(e)).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            assert_eq!(b["epoch"], e);
            partials.push(keyfrag_proto::b64::decode(b["output"].as_str().unwrap()).unwrap());
        }
        combine(&self.public, &blinded, &partials).map(|y| y.expose().to_vec())
    }

    /// Every share cell `i` stores for the key: (epoch, pending, share).
    fn stored(&self, i: usize) -> Vec<(u64, bool, RsaShare)> {
        let cell = &self.cells[i];
        let k = cell
            .state
            .store()
            .key_shares("a", &self.uid, now_secs())
            .unwrap()
            .unwrap();
        let open = |epoch, format, sealed: &[u8]| {
            cell.state
                .master_key()
                .open_share("a", &self.uid, epoch, format, sealed)
                .unwrap()
        };
        let mut out = vec![(
            k.key.epoch,
            false,
            open(k.key.epoch, k.key.format, &k.key.sealed_share),
        )];
        for (pending, row) in [(false, &k.previous), (true, &k.pending)] {
            if let Some(r) = row {
                out.push((r.epoch, pending, open(r.epoch, r.format, &r.sealed_share)));
            }
        }
        out.sort_by_key(|(e, _, _)| *e);
        out
    }
}

#[tokio::test]
async fn a_refresh_changes_every_share_and_keeps_the_key() {
    let bed = bed(None).await;
    let x = vec![0x2au8; 100];
    let before = bed.private_op(&x, [1, 1, 1]).await.unwrap();
    let old: Vec<RsaShare> = (0..3).map(|i| bed.stored(i)[0].2.clone()).collect();

    let s = session();
    let checks = bed.prepared(&s, 1).await;
    for (i, old) in old.iter().enumerate() {
        let stored = bed.stored(i);
        assert_eq!(stored.len(), 2, "committed and pending");
        assert_eq!((stored[1].0, stored[1].1), (2, true));
        assert_ne!(&stored[1].2, old, "cell {i}: the pending share is new");
        let sum = bed.summary(i).await;
        assert_eq!(
            (sum["epoch"].clone(), sum["pending"]["epoch"].clone()),
            (json!(1), json!(2))
        );
    }
    for i in 0..3 {
        let (st, b) = bed.commit(i, &s, &checks).await;
        assert_eq!((st, b["epoch"].clone()), (StatusCode::OK, json!(2)), "{b}");
    }
    // Committed everywhere, not finalized: both epochs are served, never mixed.
    assert_eq!(bed.private_op(&x, [2, 2, 2]).await.unwrap(), before);
    assert_eq!(bed.private_op(&x, [1, 1, 1]).await.unwrap(), before);
    assert_eq!(
        bed.private_op(&x, [1, 2, 2]).await.unwrap_err(),
        keyfrag_core::Error::VerifyFailed,
        "shares from before and after a refresh do not combine"
    );
    for i in 0..3 {
        let (st, b) = bed.finalize(i, &s).await;
        assert_eq!((st, b["epoch"].clone()), (StatusCode::OK, json!(2)), "{b}");
    }
    for (i, old) in old.iter().enumerate() {
        let stored = bed.stored(i);
        assert_eq!(stored.len(), 1, "cell {i}: the old share is gone");
        assert_eq!(stored[0].0, 2);
        assert_ne!(&stored[0].2, old, "cell {i}: its stored share differs");
        let sum = bed.summary(i).await;
        assert_eq!(sum["epoch"], 2);
        assert_eq!(sum["epoch_session"], json!(s));
        assert!(sum.get("previous_epoch").is_none() && sum.get("pending").is_none());
        let (st, b) = bed.partial(i, &x, Some(1)).await;
        assert_eq!(
            (st, code(&b)),
            (StatusCode::CONFLICT, "epoch_unknown"),
            "{b}"
        );
    }
    // No row of epoch 1 is left in any database.
    for cell in &bed.cells {
        let db = rusqlite::Connection::open(&cell.config.database).unwrap();
        let n: i64 = db
            .query_row("SELECT count(*) FROM shares WHERE epoch = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 0);
    }
    assert_eq!(bed.private_op(&x, [2, 2, 2]).await.unwrap(), before);
}

#[tokio::test]
async fn each_step_repeated_answers_the_same() {
    let bed = bed(None).await;
    let s = session();
    let deals = bed.deal(&s, 1).await;
    assert_eq!(
        bed.deal(&s, 1).await,
        deals,
        "a repeated DEAL repeats its envelopes"
    );
    let (_, first) = bed.prepare(0, &s, &deals).await;
    let (st, again) = bed.prepare(0, &s, &deals).await;
    assert_eq!((st, &again), (StatusCode::OK, &first));
    let (st, check) = bed.step(0, "check", json!({ "session": s })).await;
    assert_eq!((st, &check), (StatusCode::OK, &first));
    let mut checks = vec![keyfrag_proto::b64::decode(first["check"].as_str().unwrap()).unwrap()];
    for i in 1..3 {
        let (_, b) = bed.prepare(i, &s, &deals).await;
        checks.push(keyfrag_proto::b64::decode(b["check"].as_str().unwrap()).unwrap());
    }
    for i in 0..3 {
        for _ in 0..2 {
            let (st, b) = bed.commit(i, &s, &checks).await;
            assert_eq!((st, b["epoch"].clone()), (StatusCode::OK, json!(2)), "{b}");
        }
    }
    // A committed cell re-issues the same check (from its previous and committed shares).
    let (st, check) = bed.step(0, "check", json!({ "session": s })).await;
    assert_eq!((st, &check), (StatusCode::OK, &first));
    for i in 0..3 {
        for _ in 0..2 {
            assert_eq!(bed.finalize(i, &s).await.0, StatusCode::OK);
        }
    }
    // The check is stored with the share it made, so it outlives the share it came from.
    let (st, check) = bed.step(0, "check", json!({ "session": s })).await;
    assert_eq!((st, &check), (StatusCode::OK, &first));
    // Once another run moved the key on, this one is history.
    let s2 = session();
    let checks = bed.prepared(&s2, 2).await;
    for i in 0..3 {
        assert_eq!(bed.commit(i, &s2, &checks).await.0, StatusCode::OK);
    }
    let (st, b) = bed.step(0, "check", json!({ "session": s })).await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
}

#[tokio::test]
async fn a_premature_finalize_does_not_strand_the_run() {
    let bed = bed(None).await;
    let x = vec![0x21u8; 100];
    let before = bed.private_op(&x, [1, 1, 1]).await.unwrap();
    let s = session();
    let checks = bed.prepared(&s, 1).await;
    // A faulty client commits on cell a and finalizes there at once, then goes away.
    assert_eq!(bed.commit(0, &s, &checks).await.0, StatusCode::OK);
    assert_eq!(bed.finalize(0, &s).await.0, StatusCode::OK);
    // Recovery collects the checks again — cell a's too, though its epoch-1 share is gone —
    // and rolls the run forward.
    let mut again = Vec::new();
    for i in 0..3 {
        let (st, b) = bed.step(i, "check", json!({ "session": s })).await;
        assert_eq!(st, StatusCode::OK, "{b}");
        again.push(keyfrag_proto::b64::decode(b["check"].as_str().unwrap()).unwrap());
    }
    assert_eq!(again, checks);
    for i in 1..3 {
        assert_eq!(bed.commit(i, &s, &again).await.0, StatusCode::OK);
        assert_eq!(bed.finalize(i, &s).await.0, StatusCode::OK);
    }
    assert_eq!(bed.private_op(&x, [2, 2, 2]).await.unwrap(), before);
}

#[tokio::test]
async fn commit_needs_a_valid_check_from_every_party() {
    let bed = bed(None).await;
    let s = session();
    let checks = bed.prepared(&s, 1).await;
    let (st, b) = bed.commit(0, &s, &checks[..2]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    let mut tampered = checks.clone();
    let last = tampered[2].len() - 80;
    tampered[2][last] ^= 1;
    let (st, b) = bed.commit(0, &s, &tampered).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    let twice = vec![checks[0].clone(), checks[1].clone(), checks[1].clone()];
    let (st, b) = bed.commit(0, &s, &twice).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    // Checks of another run are refused too (bound to the session in their signed header).
    let (st, b) = bed.commit(0, &session(), &checks).await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    assert_eq!(bed.summary(0).await["epoch"], 1, "nothing committed");
    let (st, b) = bed.commit(0, &s, &checks).await;
    assert_eq!((st, b["epoch"].clone()), (StatusCode::OK, json!(2)), "{b}");
}

#[tokio::test]
async fn pending_is_never_served_and_previous_is_until_finalize() {
    let bed = bed(None).await;
    let x = vec![0x11u8; 90];
    let s = session();
    let checks = bed.prepared(&s, 1).await;
    let (st, b) = bed.partial(0, &x, Some(2)).await;
    assert_eq!(
        (st, code(&b)),
        (StatusCode::CONFLICT, "epoch_unknown"),
        "{b}"
    );
    let (st, b) = bed.partial(0, &x, None).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(
        (b["epoch"].clone(), b["current_epoch"].clone()),
        (json!(1), json!(1))
    );
    assert!(b.get("previous_epoch").is_none());
    assert_eq!(bed.commit(0, &s, &checks).await.0, StatusCode::OK);
    for epoch in [1, 2] {
        let (st, b) = bed.partial(0, &x, Some(epoch)).await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!(b["epoch"], epoch);
        assert_eq!(
            (b["current_epoch"].clone(), b["previous_epoch"].clone()),
            (json!(2), json!(1))
        );
    }
    // FINALIZE before every cell committed would be a client bug; the cell that has not
    // committed refuses it, and nothing changes there.
    let (st, b) = bed.finalize(1, &s).await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    assert_eq!(bed.summary(1).await["pending"]["epoch"], 2);
}

#[tokio::test]
async fn abort_is_refused_once_committed_and_fences_the_run() {
    let bed = bed(None).await;
    let s = session();
    let deals = bed.deal(&s, 1).await;
    assert_eq!(bed.prepare(0, &s, &deals).await.0, StatusCode::OK);
    let abort =
        |only_if_absent: bool| json!({"session": s, "epoch": 1, "only_if_absent": only_if_absent});
    // Recovery fences the cells that never prepared first: not this one.
    let (st, b) = bed.step(0, "abort", abort(true)).await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    for i in [1, 2, 0] {
        let (st, b) = bed.step(i, "abort", abort(i != 0)).await;
        assert_eq!(st, StatusCode::OK, "{b}");
    }
    assert!(bed.summary(0).await.get("pending").is_none());
    assert_eq!(bed.stored(0).len(), 1);
    // The run is over everywhere: no cell deals or prepares it again.
    let (st, b) = bed.prepare(1, &s, &deals).await;
    assert!(
        st == StatusCode::NOT_FOUND || st == StatusCode::CONFLICT,
        "{st} {b}"
    );
    let body = json!({"session": s, "epoch": 1, "parties": NAMES});
    let (st, b) = bed.step(0, "deal", body).await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");

    // A run committed on one cell cannot be aborted there: it rolls forward.
    let s2 = session();
    let checks = bed.prepared(&s2, 1).await;
    assert_eq!(bed.commit(0, &s2, &checks).await.0, StatusCode::OK);
    let (st, b) = bed
        .step(0, "abort", json!({"session": s2, "epoch": 1}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    for i in 1..3 {
        assert_eq!(bed.commit(i, &s2, &checks).await.0, StatusCode::OK);
    }
    for i in 0..3 {
        assert_eq!(bed.finalize(i, &s2).await.0, StatusCode::OK);
        assert_eq!(bed.summary(i).await["epoch"], 2);
    }
}

#[tokio::test]
async fn a_second_run_waits_for_the_first() {
    let bed = bed(None).await;
    let s = session();
    let checks = bed.prepared(&s, 1).await;
    let body = json!({"session": session(), "epoch": 1, "parties": NAMES});
    let (st, b) = bed.step(0, "deal", body).await;
    assert_eq!(st, StatusCode::CONFLICT, "a run is pending: {b}");
    assert_eq!(bed.commit(0, &s, &checks).await.0, StatusCode::OK);
    let body = json!({"session": session(), "epoch": 2, "parties": NAMES});
    let (st, b) = bed.step(0, "deal", body).await;
    assert_eq!(st, StatusCode::CONFLICT, "the run is not finalized: {b}");
    let body = json!({"session": session(), "epoch": 1, "parties": NAMES});
    let (st, b) = bed.step(1, "deal", body).await;
    assert_eq!(
        st,
        StatusCode::CONFLICT,
        "cell b has the first run pending: {b}"
    );
}

#[tokio::test]
async fn session_keys_and_bad_parties_are_refused() {
    let bed = bed(Some(300)).await;
    let body = json!({"session": session(), "epoch": 1, "parties": NAMES});
    let (st, b) = bed.step(0, "deal", body).await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("session key"),
        "{b}"
    );
    let bed = self::bed(None).await;
    for parties in [
        json!(["cell-a"]),
        json!(["cell-a", "cell-a", "cell-b"]),
        json!(["cell-a", "cell-b", "cell-x"]),
        json!(["cell-b", "cell-c"]),
    ] {
        let body = json!({"session": session(), "epoch": 1, "parties": parties});
        let (st, b) = bed.step(0, "deal", body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{parties}: {b}");
    }
    let body = json!({"session": "not-hex", "epoch": 1, "parties": NAMES});
    assert_eq!(bed.step(0, "deal", body).await.0, StatusCode::BAD_REQUEST);
    let body = json!({"session": session(), "epoch": 1, "parties": NAMES});
    let path = format!("/v1/keys/{}/refresh/deal", uid(0x77));
    let (st, b) = bed.cells[0].a("POST", &path, Some(body)).await;
    assert_eq!((st, code(&b)), (StatusCode::NOT_FOUND, "key_not_found"));
}

/// The version-1 layout of `keys` (shares inline), as the previous release created it.
const V1_KEYS: &str = "
CREATE TABLE keys_v1 (
    token_id        TEXT NOT NULL,
    uid             TEXT NOT NULL,
    kind            TEXT NOT NULL,
    bits            INTEGER NOT NULL,
    modulus         BLOB NOT NULL,
    public_exponent BLOB NOT NULL,
    epoch           INTEGER NOT NULL,
    format          INTEGER NOT NULL,
    sealed_share    BLOB NOT NULL,
    lease_secs      INTEGER,
    expires_at      INTEGER,
    PRIMARY KEY (token_id, uid)
);
INSERT INTO keys_v1
    SELECT k.token_id, k.uid, k.kind, k.bits, k.modulus, k.public_exponent, k.epoch,
           s.format, s.sealed_share, k.lease_secs, k.expires_at
    FROM keys k JOIN shares s ON s.token_id = k.token_id AND s.uid = k.uid AND s.epoch = k.epoch;
DROP TABLE keys;
DROP TABLE shares;
DROP TABLE refresh_fences;
DROP TABLE operator_tokens;
DROP TABLE access_keys;
DROP TABLE customer_cards;
ALTER TABLE tokens DROP COLUMN row_format;
ALTER TABLE logins DROP COLUMN row_format;
ALTER TABLE objects DROP COLUMN row_format;
ALTER TABLE staged_tx DROP COLUMN row_format;
ALTER TABLE keys_v1 RENAME TO keys;
CREATE INDEX keys_expiry ON keys (expires_at) WHERE expires_at IS NOT NULL;
UPDATE schema_version SET version = 1;
";

#[tokio::test]
async fn a_version_1_database_is_migrated_forward_on_open() {
    let cell = TestCell::new();
    cell.init_token().await;
    let key = random_key();
    let modulus = key.n().as_ref().to_be_bytes_trimmed_vartime().into_vec();
    let share = split_exponent(&key.d().to_be_bytes(), 1024, 2)
        .unwrap()
        .remove(0);
    let uid = uid(0x31);
    let body = put_body(&modulus, share.negative, share.magnitude.expose(), None);
    assert_eq!(
        cell.a("PUT", &format!("/v1/keys/{uid}"), Some(body.clone()))
            .await
            .0,
        StatusCode::OK
    );
    let user = cell.login("user", USER_PIN).await.unwrap();
    let x = vec![0x05u8; 100];
    let partial = |state: keyfrag_server::AppState| {
        let (uid, user, x) = (uid.clone(), user.clone(), x.clone());
        async move {
            let path = format!("/v1/keys/{uid}/rsa-partial");
            let body = json!({"input": b64(&x), "epoch": 1});
            call(&state, "POST", &path, Some(KEY_A), Some(&user), Some(body)).await
        }
    };
    let (_, before) = partial(cell.state.clone()).await;

    let db = rusqlite::Connection::open(&cell.config.database).unwrap();
    db.execute_batch(V1_KEYS).unwrap();
    drop(db);

    let migrated = cell.reopen();
    assert_eq!(
        migrated.store().storage_version(),
        keyfrag_server::store::STORAGE_VERSION
    );
    let (st, after) = partial(migrated.clone()).await;
    assert_eq!(st, StatusCode::OK, "{after}");
    assert_eq!(
        after["output"], before["output"],
        "the same share, at epoch 1"
    );
    let (st, b) = call(
        &migrated,
        "GET",
        &format!("/v1/keys/{uid}"),
        Some(KEY_A),
        None,
        None,
    )
    .await;
    assert_eq!((st, b["epoch"].clone()), (StatusCode::OK, json!(1)));
    // The migrated key takes part in the store as any other: stored again, it is the same.
    let (st, b) = call(
        &migrated,
        "PUT",
        &format!("/v1/keys/{uid}"),
        Some(KEY_A),
        None,
        Some(body),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let db = rusqlite::Connection::open(&cell.config.database).unwrap();
    let version: u32 = db
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, keyfrag_server::store::STORAGE_VERSION);
    // A database from a newer release is refused, not guessed at.
    db.execute(
        "UPDATE schema_version SET version = ?1",
        [keyfrag_server::store::STORAGE_VERSION + 1],
    )
    .unwrap();
    drop(db);
    assert!(keyfrag_server::AppState::open(&cell.config).is_err());
}
