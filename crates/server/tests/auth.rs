//! Every route requires a valid access key, and each key sees only its own token.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

fn routes() -> Vec<(&'static str, String)> {
    let u = uid(1);
    vec![
        ("GET", "/v1/info".into()),
        ("GET", "/v1/token".into()),
        ("POST", "/v1/token/init".into()),
        ("POST", "/v1/login".into()),
        ("POST", "/v1/logout".into()),
        ("POST", "/v1/pin/init".into()),
        ("POST", "/v1/pin/set".into()),
        ("GET", "/v1/objects".into()),
        ("POST", "/v1/objects/stage".into()),
        ("POST", "/v1/objects/commit".into()),
        ("POST", "/v1/objects/abort".into()),
        ("GET", "/v1/keys".into()),
        ("POST", "/v1/keys/lease".into()),
        ("PUT", format!("/v1/keys/{u}")),
        ("DELETE", format!("/v1/keys/{u}")),
        ("POST", format!("/v1/keys/{u}/rsa-partial")),
        ("GET", "/v1/no-such-route".into()),
    ]
}

#[tokio::test]
async fn every_route_refuses_without_or_with_a_wrong_access_key() {
    let cell = TestCell::new();
    for (method, path) in routes() {
        for key in [
            None,
            Some("wrong-key"),
            Some(""),
            Some(&sha256_hex(KEY_A)[..]),
        ] {
            let (s, b) = cell.call(method, &path, key, None, Some(json!({}))).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path} with {key:?}");
            assert_eq!(code(&b), "unauthorized", "{method} {path}");
        }
        // A bare key without "Bearer " is not accepted either.
        let req = axum::http::Request::builder()
            .method(method)
            .uri(&path)
            .header("authorization", KEY_A)
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = tower::ServiceExt::oneshot(keyfrag_server::app(cell.state.clone()), req)
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn info_reports_versions() {
    let cell = TestCell::new();
    let (s, b) = cell.a("GET", "/v1/info", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["cell"], "test-cell");
    assert_eq!(b["wire_version"], keyfrag_proto::WIRE_VERSION);
    assert_eq!(b["storage_version"], keyfrag_server::store::STORAGE_VERSION);
}

#[tokio::test]
async fn unknown_routes_and_big_bodies_get_error_bodies() {
    let cell = TestCell::new();
    let (s, b) = cell.a("GET", "/v1/nothing", None).await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "not_found"));
    let big = "x".repeat(keyfrag_proto::MAX_BODY_BYTES + 10);
    let (s, b) = cell
        .a("POST", "/v1/objects/stage", Some(json!({ "txid": big })))
        .await;
    assert_eq!((s, code(&b)), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));
    let (s, b) = cell.a("POST", "/v1/login", Some(json!({"pin": "1"}))).await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "bad_request"));
}

#[tokio::test]
async fn tokens_are_isolated_by_access_key() {
    let cell = TestCell::new();
    cell.init_token().await;
    let (_, b) = cell.call("GET", "/v1/token", Some(KEY_B), None, None).await;
    assert_eq!(b["initialized"], false);
    // A login for token A is no login for token B.
    let user = cell.login("user", USER_PIN).await.unwrap();
    let (s, b) = cell
        .call(
            "POST",
            &format!("/v1/keys/{}/rsa-partial", uid(1)),
            Some(KEY_B),
            Some(&user),
            Some(json!({"input": b64(&[2])})),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "user_not_logged_in"));
}

#[test]
fn master_key_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    set_mode(&config.master_key_file, 0o640);
    let e = keyfrag_server::AppState::open(&config)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("master.key") && e.contains("group or others"),
        "{e}"
    );
    set_mode(&config.master_key_file, 0o600);
    std::fs::write(&config.master_key_file, "abcd").unwrap();
    let e = keyfrag_server::AppState::open(&config)
        .unwrap_err()
        .to_string();
    assert!(e.contains("64 hex digits"), "{e}");
}
