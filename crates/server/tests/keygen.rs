//! The keygen routes of one cell, without peers: what a cell refuses before and during a
//! session, and the session lifecycle (start, refused step, abort). Whole generations across
//! three cells are in crates/cli/tests/keygen.rs.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{KEY_A, TestCell, set_mode, uid};
use keyfrag_core::relay::{Envelope, PartyCard, PartyKeys};
use keyfrag_proto::keygen::{KeygenBody, encode_batch};
use keyfrag_server::relay_identity::{ClusterFile, RelayIdentity};
use keyfrag_server::{AppState, app};
use serde_json::{Value, json};
use tower::ServiceExt;

const PARTIES: [&str; 3] = ["peer-0", "test-cell", "peer-2"];

/// The test cell with a relay identity among PARTIES (it is party 1).
fn cell_with_relay() -> (TestCell, AppState) {
    let cell = TestCell::new();
    let cards: Vec<PartyCard> = PARTIES
        .iter()
        .enumerate()
        .map(|(i, id)| PartyKeys::from_seed(&[i as u8; 32]).card(id).unwrap())
        .collect();
    let (seed, cluster) = (
        cell.dir.path().join("relay.seed"),
        cell.dir.path().join("c.toml"),
    );
    std::fs::write(&seed, hex::encode([1u8; 32])).unwrap();
    set_mode(&seed, 0o600);
    std::fs::write(&cluster, ClusterFile::from_cards(&cards).to_toml()).unwrap();
    let relay = RelayIdentity::load("test-cell", &seed, &cluster).unwrap();
    let state = cell.state.clone().with_relay(relay);
    (cell, state)
}

/// One request; the answer's status, content type and raw body.
async fn raw(
    state: &AppState,
    path: &str,
    key: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, String, Vec<u8>) {
    let mut req = Request::builder().method("POST").uri(path);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let resp = app(state.clone())
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 26)
        .await
        .unwrap();
    (status, ctype, bytes.to_vec())
}

async fn json_call(state: &AppState, path: &str, body: Value) -> (StatusCode, Value) {
    let (s, _, b) = raw(state, path, Some(KEY_A), serde_json::to_vec(&body).unwrap()).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

fn start_body(session: &str, bits: u32, parties: &[&str]) -> Value {
    json!({"session": session, "key_uid": uid(7), "bits": bits, "allow_1024": false,
           "parties": parties})
}

#[tokio::test]
async fn a_cell_without_relay_identity_refuses_by_name() {
    let cell = TestCell::new();
    let (s, b) = json_call(
        &cell.state,
        "/v1/keygen/start",
        start_body(&uid(1), 2048, &PARTIES),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let msg = b["message"].as_str().unwrap();
    assert!(
        msg.contains("test-cell") && msg.contains("relay identity"),
        "{msg}"
    );
}

#[tokio::test]
async fn bad_start_requests_are_refused() {
    let (_cell, state) = cell_with_relay();
    let cases: Vec<(Value, &str)> = vec![
        (start_body(&uid(1), 1024, &PARTIES), "not supported"),
        (start_body(&uid(1), 2047, &PARTIES), "not supported"),
        (start_body("xyz", 2048, &PARTIES), "session id"),
        (
            start_body(&uid(1), 2048, &["peer-0", "peer-2", "peer-3"]),
            "not a party",
        ),
        (
            start_body(&uid(1), 2048, &["peer-0", "test-cell", "stranger"]),
            "cluster file",
        ),
        (
            start_body(&uid(1), 2048, &["peer-0", "test-cell", "peer-0"]),
            "twice",
        ),
        (
            start_body(&uid(1), 2048, &["peer-0", "test-cell"]),
            "3 to 16 parties",
        ),
    ];
    for (body, expect) in cases {
        let (s, b) = json_call(&state, "/v1/keygen/start", body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert!(b["message"].as_str().unwrap().contains(expect), "{b}");
    }
    let (s, _, _) = raw(&state, "/v1/keygen/start", None, b"{}".to_vec()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn session_lifecycle_and_refusals() {
    let (_cell, state) = cell_with_relay();
    let session = uid(2);
    let body = start_body(&session, 1024, &PARTIES);
    let mut body1024 = body.clone();
    body1024["allow_1024"] = json!(true);
    let bytes = serde_json::to_vec(&body1024).unwrap();
    let (s, ctype, answer) = raw(&state, "/v1/keygen/start", Some(KEY_A), bytes.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ctype, "application/octet-stream");
    let KeygenBody::Batch(envs) = KeygenBody::from_bytes(&answer).unwrap() else {
        panic!("start answers a batch");
    };
    assert!(!envs.is_empty());
    for e in &envs {
        let env = Envelope::from_bytes(e).unwrap();
        assert_eq!(env.header().sender, "test-cell");
        assert_eq!(env.header().session_id, session);
        assert_eq!(env.header().round, 0);
    }
    // The same session id again is a conflict.
    let (s, _, _) = raw(&state, "/v1/keygen/start", Some(KEY_A), bytes).await;
    assert_eq!(s, StatusCode::CONFLICT);

    let step = format!("/v1/keygen/{session}/step");
    let (s, _, _) = raw(&state, &step, Some(KEY_A), b"garbage".to_vec()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Its own envelopes relayed back to it: refused (not from a peer), and the session aborts.
    let (s, _, b) = raw(&state, &step, Some(KEY_A), encode_batch(&envs)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let msg = String::from_utf8_lossy(&b).into_owned();
    assert!(
        msg.contains("aborted") && msg.contains("not a peer"),
        "{msg}"
    );
    let (s, _, b) = raw(&state, &step, Some(KEY_A), encode_batch::<Vec<u8>>(&[])).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(String::from_utf8_lossy(&b).contains("aborted earlier"));

    let abort = format!("/v1/keygen/{session}/abort");
    for _ in 0..2 {
        let (s, _, _) = raw(&state, &abort, Some(KEY_A), Vec::new()).await;
        assert_eq!(s, StatusCode::OK, "abort is idempotent");
    }
    let (s, _, b) = raw(&state, &step, Some(KEY_A), encode_batch::<Vec<u8>>(&[])).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&b).contains("no key generation session"));
    let commit = format!("/v1/keygen/{session}/commit");
    let (s, _) = json_call(&state, &commit, json!({"transcript_hashes": []})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(state.keygen_sessions().is_empty());
}

#[tokio::test]
async fn sessions_are_per_token_and_swept_when_idle() {
    let (_cell, state) = cell_with_relay();
    let mut body = start_body(&uid(3), 1024, &PARTIES);
    body["allow_1024"] = json!(true);
    let (s, _, _) = raw(
        &state,
        "/v1/keygen/start",
        Some(KEY_A),
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // Token B cannot see (or abort) token A's session.
    let step = format!("/v1/keygen/{}/step", uid(3));
    let (s, _, _) = raw(
        &state,
        &step,
        Some(common::KEY_B),
        encode_batch::<Vec<u8>>(&[]),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(state.keygen_sessions().len(), 1);
    assert_eq!(
        state
            .keygen_sessions()
            .sweep(std::time::Duration::from_secs(60)),
        0
    );
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(state.keygen_sessions().sweep(std::time::Duration::ZERO), 1);
    assert!(state.keygen_sessions().is_empty());
}
