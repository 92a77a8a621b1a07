//! The key pool: a pooled key is listed by `GET /v1/keys/pool` and flagged in `GET /v1/keys`,
//! refuses partials until claimed, is claimed exactly once (also under concurrent claims), may
//! be claimed as a session key, is invisible to other tokens, and keeps its flag across a
//! restart and a master-key rotation (which re-seals its share).

mod common;

use axum::http::StatusCode;
use common::*;
use keyfrag_core::rsa_share::split_exponent;
use keyfrag_server::AppState;
use keyfrag_server::rotation::rotate;
use keyfrag_server::sealing::SHARE_FORMAT;
use keyfrag_server::store::{KeyRow, PutKeyOutcome};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde_json::{Value, json};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A real RSA-1024 modulus and one of two shares of its d.
fn key_material() -> (Vec<u8>, keyfrag_core::rsa_share::RsaShare) {
    let key = rsa::PrivateKey::new(
        &mut getrandom::rand_core::UnwrapErr(getrandom::SysRng),
        1024,
    )
    .unwrap();
    let modulus = key.n().as_ref().to_be_bytes_trimmed_vartime().into_vec();
    let share = split_exponent(&key.d().to_be_bytes(), 1024, 2)
        .unwrap()
        .remove(0);
    (modulus, share)
}

/// Store a key in token A's pool, as a keygen commit with `pooled` does.
fn put_pooled(state: &AppState, uid: &str) {
    let (modulus, share) = key_material();
    let sealed = state.master_key().seal_share("a", uid, 1, &share).unwrap();
    let row = KeyRow {
        uid: uid.to_owned(),
        kind: "rsa".into(),
        bits: 1024,
        modulus,
        public_exponent: vec![1, 0, 1],
        epoch: 1,
        format: SHARE_FORMAT,
        sealed_share: sealed,
        lease_secs: None,
        expires_at: None,
        pooled: true,
    };
    let outcome = state.store().put_key("a", &row, now()).unwrap();
    assert!(matches!(outcome, PutKeyOutcome::Inserted));
}

async fn pool(cell: &TestCell, key: &str) -> Vec<Value> {
    let (s, b) = cell
        .call("GET", "/v1/keys/pool", Some(key), None, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["keys"].as_array().unwrap().clone()
}

async fn partial(state: &AppState, user: &str, uid: &str) -> (StatusCode, Value) {
    let path = format!("/v1/keys/{uid}/rsa-partial");
    let body = json!({"input": b64(&[0x07; 100])});
    call(state, "POST", &path, Some(KEY_A), Some(user), Some(body)).await
}

async fn claim(cell: &TestCell, key: &str, uid: &str, lease: Option<u64>) -> (StatusCode, Value) {
    let path = format!("/v1/keys/{uid}/claim");
    cell.call(
        "POST",
        &path,
        Some(key),
        None,
        Some(json!({"lease_secs": lease})),
    )
    .await
}

#[tokio::test]
async fn a_pooled_key_refuses_partials_until_claimed_once() {
    let cell = TestCell::new();
    cell.init_token().await;
    let user = cell.login("user", USER_PIN).await.unwrap();
    let (modulus, share) = key_material();
    let body = put_body(&modulus, share.negative, share.magnitude.expose(), None);
    let (s, b) = cell
        .a("PUT", &format!("/v1/keys/{}", uid(1)), Some(body))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    put_pooled(&cell.state, &uid(2));

    let listed = pool(&cell, KEY_A).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (&listed[0]["uid"], &listed[0]["bits"]),
        (&json!(uid(2)), &json!(1024))
    );
    assert_eq!(listed[0]["public_exponent"], json!(b64(&[1, 0, 1])));
    let n = keyfrag_proto::b64::decode(listed[0]["modulus"].as_str().unwrap()).unwrap();
    assert_eq!(n.len(), 128);
    let (_, b) = cell.a("GET", "/v1/keys", None).await;
    let keys = b["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        keys[0]["pooled"],
        json!(null),
        "an ordinary key carries no flag"
    );
    assert_eq!(keys[1]["pooled"], json!(true));

    let (s, b) = partial(&cell.state, &user, &uid(2)).await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "conflict"));
    assert!(
        b["message"].as_str().unwrap().contains("is in the pool"),
        "{b}"
    );

    // Another token neither sees nor claims it.
    assert!(pool(&cell, KEY_B).await.is_empty());
    let (s, b) = claim(&cell, KEY_B, &uid(2), None).await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "key_not_found"));

    let (s, b) = claim(&cell, KEY_A, &uid(2), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = claim(&cell, KEY_A, &uid(2), None).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, "conflict"),
        "claimed twice"
    );
    let (s, b) = claim(&cell, KEY_A, &uid(1), None).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, "conflict"),
        "never pooled"
    );
    let (s, b) = claim(&cell, KEY_A, &uid(0x77), None).await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "key_not_found"));
    let (s, b) = claim(&cell, KEY_A, &uid(2), Some(0)).await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "bad_request"));

    assert!(pool(&cell, KEY_A).await.is_empty());
    let (s, b) = partial(&cell.state, &user, &uid(2)).await;
    assert_eq!(s, StatusCode::OK, "claimed: it serves partials ({b})");
    let (_, b) = cell.a("GET", &format!("/v1/keys/{}", uid(2)), None).await;
    assert_eq!(
        (b["pooled"].clone(), b["lease_remaining_secs"].clone()),
        (json!(null), json!(null))
    );
}

#[tokio::test]
async fn a_claim_with_a_lease_makes_a_session_key() {
    let cell = TestCell::new();
    put_pooled(&cell.state, &uid(3));
    let (s, b) = claim(&cell, KEY_A, &uid(3), Some(120)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, b) = cell.a("GET", &format!("/v1/keys/{}", uid(3)), None).await;
    let left = b["lease_remaining_secs"].as_u64().expect("a session key");
    assert!((1..=120).contains(&left), "{left}");
    // Its lease runs out like any session key's: then it is gone, not back in the pool.
    let swept = cell.state.store().sweep_expired(now() + 121).unwrap();
    assert_eq!(swept, 1);
    assert!(pool(&cell, KEY_A).await.is_empty());
}

#[tokio::test]
async fn of_concurrent_claims_exactly_one_succeeds() {
    let cell = TestCell::new();
    put_pooled(&cell.state, &uid(4));
    let path = format!("/v1/keys/{}/claim", uid(4));
    let claims: Vec<_> = (0..8)
        .map(|_| {
            let (state, path) = (cell.state.clone(), path.clone());
            tokio::spawn(async move {
                call(&state, "POST", &path, Some(KEY_A), None, Some(json!({}))).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for c in claims {
        results.push(c.await.unwrap());
    }
    let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let refused = results
        .iter()
        .filter(|(s, b)| *s == StatusCode::CONFLICT && code(b) == "conflict")
        .count();
    assert_eq!((ok, refused), (1, 7));
}

#[tokio::test]
async fn the_pool_survives_a_restart_and_a_master_key_rotation() {
    let cell = TestCell::new();
    cell.init_token().await;
    put_pooled(&cell.state, &uid(5));
    put_pooled(&cell.state, &uid(6));
    let state = &cell.state;
    let done = rotate(state.store().as_ref(), state.master_key(), 10, None).unwrap();
    assert!(done.finished && done.resealed == 2, "{done:?}");
    let restarted = cell.reopen();
    let listed: Vec<_> = restarted
        .store()
        .pool("a", now())
        .unwrap()
        .into_iter()
        .map(|k| (k.uid, k.bits))
        .collect();
    assert_eq!(listed, vec![(uid(5), 1024), (uid(6), 1024)]);
    // Still refused while pooled; once claimed, the re-sealed share opens and serves.
    let user = cell.login("user", USER_PIN).await.unwrap();
    let (s, _) = partial(&restarted, &user, &uid(5)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let path = format!("/v1/keys/{}/claim", uid(5));
    let (s, b) = call(
        &restarted,
        "POST",
        &path,
        Some(KEY_A),
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = partial(&restarted, &user, &uid(5)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}
