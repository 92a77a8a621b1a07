//! The operator's routes: only the operator key opens them, and it opens nothing else.

mod common;

use axum::http::StatusCode;
use common::{KEY_A, TestCell, call, sha256_hex};
use serde_json::json;

const OPERATOR: &str = "operator-key-for-tests";

fn operator_cell() -> (TestCell, keyfrag_server::AppState) {
    let cell = TestCell::new();
    let hash: [u8; 32] = hex::decode(sha256_hex(OPERATOR))
        .unwrap()
        .try_into()
        .unwrap();
    let state = cell.state.clone().with_operator_key(hash);
    (cell, state)
}

#[tokio::test]
async fn only_the_operator_key_opens_admin_routes() {
    let (_cell, state) = operator_cell();
    let (s, b) = call(&state, "GET", "/v1/admin/info", Some(OPERATOR), None, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["cell"], "test-cell");
    for key in [Some(KEY_A), Some("operator-key-for-test"), None] {
        let (s, b) = call(&state, "GET", "/v1/admin/info", key, None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{key:?}");
        assert_eq!(b["code"], "unauthorized");
    }
    // The operator key is not a token's access key.
    let (s, _) = call(&state, "GET", "/v1/token", Some(OPERATOR), None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_cell_without_an_operator_key_refuses_every_admin_call() {
    let cell = TestCell::new();
    for key in [Some(KEY_A), Some(""), None] {
        let (s, _) = call(&cell.state, "GET", "/v1/admin/info", key, None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
}

async fn admin(
    state: &keyfrag_server::AppState,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    call(state, method, path, Some(OPERATOR), None, body).await
}

#[tokio::test]
async fn token_creation_is_idempotent_and_a_bad_pin_leaves_nothing() {
    let (_cell, state) = operator_cell();
    let new = |pin: &str| json!({"token": "ops-token", "so_pin": pin});
    let (s, b) = admin(&state, "POST", "/v1/admin/tokens", Some(new("12"))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, _) = admin(&state, "GET", "/v1/admin/access-keys?token=ops-token", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, b) = admin(&state, "POST", "/v1/admin/tokens", Some(new("so-pin-99"))).await;
    assert_eq!(
        (s, b["changed"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{b}"
    );
    let (s, b) = admin(&state, "POST", "/v1/admin/tokens", Some(new("so-pin-99"))).await;
    assert_eq!(
        (s, b["changed"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{b}"
    );
    // A config-declared token is not the operator's to create.
    let (s, b) = admin(
        &state,
        "POST",
        "/v1/admin/tokens",
        Some(json!({"token": "a", "so_pin": "so-pin-99"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, b) = admin(
        &state,
        "POST",
        "/v1/admin/tokens/remove",
        Some(json!({"token": "ops-token"})),
    )
    .await;
    assert_eq!(
        (s, b["changed"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{b}"
    );
    let (s, _) = admin(&state, "GET", "/v1/admin/access-keys?token=ops-token", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_issued_key_works_until_revoked_and_the_cell_keeps_only_its_hash() {
    let (cell, state) = operator_cell();
    let (s, b) = admin(
        &state,
        "POST",
        "/v1/admin/tokens",
        Some(json!({"token": "ops", "so_pin": "so-pin-99"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let key = "issued-access-key-0123456789";
    let issue = |token: &str, name: &str, key: &str| json!({"token": token, "name": name, "key_sha256": sha256_hex(key)});
    let (s, b) = admin(
        &state,
        "POST",
        "/v1/admin/access-keys",
        Some(issue("nope", "k1", key)),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    assert!(b["message"].as_str().unwrap().contains("nope"), "{b}");
    let (s, _) = call(&state, "GET", "/v1/token", Some(key), None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, b) = admin(
        &state,
        "POST",
        "/v1/admin/access-keys",
        Some(issue("ops", "k1", key)),
    )
    .await;
    assert_eq!(
        (s, b["changed"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{b}"
    );
    let (s, b) = admin(
        &state,
        "POST",
        "/v1/admin/access-keys",
        Some(issue("ops", "k1", key)),
    )
    .await;
    assert_eq!(
        (s, b["changed"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{b}"
    );
    let (s, b) = admin(
        &state,
        "POST",
        "/v1/admin/access-keys",
        Some(issue("ops", "k1", "another-key")),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");

    let (s, b) = call(&state, "GET", "/v1/token", Some(key), None, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["label"], "ops");
    assert_eq!(b["initialized"], true);
    // Only the hash is on disk.
    let db = std::fs::read(&cell.config.database).unwrap();
    assert!(!db.windows(key.len()).any(|w| w == key.as_bytes()));

    let (s, b) = admin(&state, "GET", "/v1/admin/access-keys?token=ops", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let k = &b["keys"][0];
    assert_eq!(k["name"], "k1");
    assert!(k["last_used"].as_u64().is_some(), "{b}");
    assert!(k["revoked_at"].is_null());

    let revoke = |name: &str| json!({"token": "ops", "name": name});
    let (s, _) = admin(
        &state,
        "POST",
        "/v1/admin/access-keys/revoke",
        Some(revoke("k9")),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = admin(
        &state,
        "POST",
        "/v1/admin/access-keys/revoke",
        Some(revoke("k1")),
    )
    .await;
    assert_eq!(
        (s, b["changed"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{b}"
    );
    let (s, b) = call(&state, "GET", "/v1/token", Some(key), None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    // Still refused after a restart, and the name is not reused.
    let reopened = cell.reopen();
    let (s, _) = call(&reopened, "GET", "/v1/token", Some(key), None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, b) = admin(&state, "GET", "/v1/admin/access-keys?token=ops", None).await;
    assert!(b["keys"][0]["revoked_at"].as_u64().is_some(), "{s} {b}");
    // Config-declared keys keep working beside issued ones.
    let (s, _) = call(&state, "GET", "/v1/token", Some(KEY_A), None, None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn every_answer_names_the_wire_version() {
    use tower::ServiceExt;
    let (_cell, state) = operator_cell();
    for (path, key) in [
        ("/v1/info", Some(KEY_A)),
        ("/v1/info", None),
        ("/v1/admin/info", Some(OPERATOR)),
        ("/nowhere", None),
    ] {
        let mut req = axum::http::Request::builder().uri(path);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let resp = keyfrag_server::app(state.clone())
            .oneshot(req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            resp.headers()[keyfrag_proto::WIRE_HEADER],
            keyfrag_proto::WIRE_VERSION.to_string(),
            "{path}"
        );
    }
}
