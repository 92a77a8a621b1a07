//! The operator's routes: only the operator key opens them, and it opens nothing else.

mod common;

use axum::http::StatusCode;
use common::{KEY_A, TestCell, call, sha256_hex};

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
