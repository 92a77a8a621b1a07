//! Two-phase object metadata: stage, commit, abort, idempotency and the metadata hash.

mod common;

use axum::http::StatusCode;
use common::*;
use keyfrag_proto::objects::{Attr, ObjectRecord, metadata_hash};
use serde_json::{Value, json};

fn obj(id: &str, value: &[u8]) -> ObjectRecord {
    ObjectRecord {
        id: id.into(),
        key_uid: Some(uid(0xee)),
        attrs: vec![
            Attr {
                kind: 3,
                value: value.to_vec(),
            },
            Attr {
                kind: 0,
                value: vec![3, 0, 0, 0, 0, 0, 0, 0],
            },
        ],
    }
}

fn stage_body(txid: &str, puts: &[ObjectRecord], deletes: &[String]) -> Option<Value> {
    Some(json!({"txid": txid, "puts": puts, "deletes": deletes}))
}

fn tx(txid: &str) -> Option<Value> {
    Some(json!({ "txid": txid }))
}

#[tokio::test]
async fn stage_commit_abort_round_trip() {
    let cell = TestCell::new();
    cell.init_token().await;
    let (o1, o2) = (obj(&uid(0x11), b"one"), obj(&uid(0x22), b"two"));
    let t1 = uid(0xa1);

    let (s, _) = cell
        .a(
            "POST",
            "/v1/objects/stage",
            stage_body(&t1, &[o2.clone(), o1.clone()], &[]),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Staged is not visible.
    let (_, b) = cell.a("GET", "/v1/objects", None).await;
    assert_eq!(b["objects"].as_array().unwrap().len(), 0);
    assert_eq!(b["metadata_hash"], metadata_hash("tok", &[]));
    // Staging the same content again is fine; different content is a conflict.
    let (s, _) = cell
        .a(
            "POST",
            "/v1/objects/stage",
            stage_body(&t1, &[o2.clone(), o1.clone()], &[]),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = cell
        .a(
            "POST",
            "/v1/objects/stage",
            stage_body(&t1, std::slice::from_ref(&o1), &[]),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "conflict"));

    let (s, b) = cell.a("POST", "/v1/objects/commit", tx(&t1)).await;
    assert_eq!(s, StatusCode::OK);
    let expected = metadata_hash("tok", &[o1.clone(), o2.clone()]);
    assert_eq!(b["metadata_hash"], expected);
    // Committing again changes nothing and reports the current hash.
    let (s, b) = cell.a("POST", "/v1/objects/commit", tx(&t1)).await;
    assert_eq!(
        (s, b["metadata_hash"].clone()),
        (StatusCode::OK, json!(expected))
    );
    // A committed transaction cannot be aborted.
    let (s, b) = cell.a("POST", "/v1/objects/abort", tx(&t1)).await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "conflict"));

    let (_, b) = cell.a("GET", "/v1/objects", None).await;
    let objects: Vec<ObjectRecord> = serde_json::from_value(b["objects"].clone()).unwrap();
    assert_eq!(objects, vec![o1.clone(), o2.clone()]);
    assert_eq!(b["metadata_hash"], expected);
    assert_eq!(cell.token_status().await["metadata_hash"], expected);

    // Delete one, replace the other; abort a third transaction.
    let o2b = obj(&uid(0x22), b"two, changed");
    let t2 = uid(0xa2);
    let (s, _) = cell
        .a(
            "POST",
            "/v1/objects/stage",
            stage_body(&t2, std::slice::from_ref(&o2b), &[uid(0x11)]),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let t3 = uid(0xa3);
    let (s, _) = cell
        .a(
            "POST",
            "/v1/objects/stage",
            stage_body(&t3, &[obj(&uid(0x33), b"x")], &[]),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = cell.a("POST", "/v1/objects/abort", tx(&t3)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = cell.a("POST", "/v1/objects/commit", tx(&t3)).await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, b) = cell.a("POST", "/v1/objects/commit", tx(&t2)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b["metadata_hash"],
        metadata_hash("tok", std::slice::from_ref(&o2b))
    );
    // Another token sees none of it.
    let (_, b) = cell
        .call("GET", "/v1/objects", Some(KEY_B), None, None)
        .await;
    assert_eq!(b["objects"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn malformed_transactions_are_refused() {
    let cell = TestCell::new();
    let good = obj(&uid(1), b"v");
    for body in [
        stage_body("not-hex", std::slice::from_ref(&good), &[]),
        stage_body(&uid(0xab).to_uppercase(), std::slice::from_ref(&good), &[]),
        stage_body(&uid(2), &[obj("short", b"v")], &[]),
        stage_body(&uid(2), &[good.clone(), good.clone()], &[]),
        stage_body(&uid(2), std::slice::from_ref(&good), &[uid(1)]),
        stage_body(&uid(2), &[], &["zz".into()]),
    ] {
        let (s, b) = cell.a("POST", "/v1/objects/stage", body).await;
        assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "bad_request"));
    }
    let (s, b) = cell.a("POST", "/v1/objects/commit", tx(&uid(9))).await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "not_found"));
}
