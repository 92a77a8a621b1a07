//! PRF keys on one cell: create, fix commitments, evaluate with a proof the module can check;
//! the refusals (bad elements, unfixed or foreign lists, wrong kind, no login); listing,
//! leases and deletion through the key routes.

mod common;

use axum::http::StatusCode;
use common::*;
use keyfrag_core::dprf::{Blinding, Element, Proof, commitments_hash, verify};
use serde_json::{Value, json};

fn unb64(v: &Value) -> Vec<u8> {
    keyfrag_proto::b64::decode(v.as_str().unwrap()).unwrap()
}

async fn create(cell: &TestCell, uid: &str, lease: Option<u64>) -> Vec<u8> {
    let (s, b) = cell
        .a(
            "POST",
            &format!("/v1/keys/{uid}/prf-create"),
            Some(json!({ "lease_secs": lease })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["epoch"], 1);
    unb64(&b["commitment"])
}

async fn fix(cell: &TestCell, uid: &str, list: &[&[u8]]) -> (StatusCode, Value) {
    let list: Vec<String> = list.iter().map(|k| b64(k)).collect();
    cell.a(
        "POST",
        &format!("/v1/keys/{uid}/prf-commitments"),
        Some(json!({ "commitments": list })),
    )
    .await
}

async fn evaluate(cell: &TestCell, login: &str, uid: &str, blinded: &[u8]) -> (StatusCode, Value) {
    cell.call(
        "POST",
        &format!("/v1/keys/{uid}/prf-evaluate"),
        Some(KEY_A),
        Some(login),
        Some(json!({ "blinded": b64(blinded) })),
    )
    .await
}

fn other_commitment() -> Vec<u8> {
    keyfrag_core::dprf::PrfShare::random()
        .unwrap()
        .commitment()
        .unwrap()
        .to_bytes()
        .to_vec()
}

#[tokio::test]
async fn a_fixed_key_evaluates_with_a_proof_against_its_commitment() {
    let cell = TestCell::new();
    cell.init_token().await;
    let user = cell.login("user", USER_PIN).await.unwrap();
    let u = uid(1);
    let own = create(&cell, &u, None).await;
    assert_eq!(
        create(&cell, &u, None).await,
        own,
        "a retry answers the same share"
    );

    let blinding = Blinding::new(b"input").unwrap();
    let (s, b) = evaluate(&cell, &user, &u, &blinding.blinded().to_bytes()).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, "conflict"),
        "not fixed: {b}"
    );

    // The list must hold this cell's commitment; then it is fixed once.
    let peer = other_commitment();
    let (s, b) = fix(&cell, &u, &[&peer]).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "bad_request"),
        "{b}"
    );
    let (s, b) = fix(&cell, &u, &[&own, &own]).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "bad_request"),
        "{b}"
    );
    let (s, b) = fix(&cell, &u, &[&peer, &own]).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let list = [
        Element::from_bytes(&peer).unwrap(),
        Element::from_bytes(&own).unwrap(),
    ];
    assert_eq!(
        b["commitments_hash"],
        hex::encode(commitments_hash(&u, &list))
    );
    assert_eq!(
        fix(&cell, &u, &[&peer, &own]).await.0,
        StatusCode::OK,
        "idempotent"
    );
    let (s, b) = fix(&cell, &u, &[&own, &peer]).await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "conflict"), "{b}");
    let (s, b) = cell
        .a(
            "POST",
            &format!("/v1/keys/{u}/prf-create"),
            Some(json!({"lease_secs": null})),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, "conflict"),
        "fixed: {b}"
    );

    // Two blindings of one input: each proof verifies, and both unblind to one output.
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let blinding = Blinding::new(b"input").unwrap();
        let (s, b) = evaluate(&cell, &user, &u, &blinding.blinded().to_bytes()).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["index"], 1);
        assert_eq!(b["epoch"], 1);
        assert_eq!(b["commitments"], json!([b64(&peer), b64(&own)]));
        let z = Element::from_bytes(&unb64(&b["evaluated"])).unwrap();
        let proof = Proof::from_bytes(&unb64(&b["proof"])).unwrap();
        let k = Element::from_bytes(&own).unwrap();
        verify(&k, blinding.blinded(), &z, &proof).unwrap();
        assert!(verify(&list[0], blinding.blinded(), &z, &proof).is_err());
        outputs.push(blinding.finalize([&z], None).unwrap().to_vec());
    }
    assert_eq!(outputs[0], outputs[1]);
}

#[tokio::test]
async fn evaluation_refuses_bad_elements_other_kinds_and_missing_logins() {
    let cell = TestCell::new();
    cell.init_token().await;
    let user = cell.login("user", USER_PIN).await.unwrap();
    let u = uid(2);
    let own = create(&cell, &u, None).await;
    assert_eq!(fix(&cell, &u, &[&own]).await.0, StatusCode::OK);

    let mut non_canonical = [0xffu8; 32];
    non_canonical[31] = 0x7f;
    let mut negative = own.clone();
    negative[0] |= 1;
    for (what, bad) in [
        ("identity", vec![0u8; 32]),
        ("non-canonical", non_canonical.to_vec()),
        ("negative encoding", negative),
        ("short", vec![1u8; 31]),
        ("long", vec![0u8; 33]),
    ] {
        let (s, b) = evaluate(&cell, &user, &u, &bad).await;
        assert_eq!(
            (s, code(&b)),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{what}: {b}"
        );
    }
    let good = Blinding::new(b"x").unwrap().blinded().to_bytes();
    let (s, b) = cell
        .a(
            "POST",
            &format!("/v1/keys/{u}/prf-evaluate"),
            Some(json!({"blinded": b64(&good)})),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "user_not_logged_in"),
        "{b}"
    );
    let (s, b) = evaluate(&cell, &user, &uid(3), &good).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::NOT_FOUND, "key_not_found"),
        "{b}"
    );
    let (s, b) = cell
        .call(
            "POST",
            &format!("/v1/keys/{u}/prf-evaluate"),
            Some(KEY_A),
            Some(&user),
            Some(json!({"blinded": b64(&good), "epoch": 2})),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, "epoch_unknown"),
        "{b}"
    );

    // An RSA key is no PRF key, and a PRF key is no RSA key.
    let rsa = uid(4);
    let share = random(keyfrag_core::rsa_share::share_bytes(512));
    let (s, b) = cell
        .a(
            "PUT",
            &format!("/v1/keys/{rsa}"),
            Some(put_body(&fake_modulus(), false, &share, None)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = evaluate(&cell, &user, &rsa, &good).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "bad_request"),
        "{b}"
    );
    let (s, b) = cell
        .a(
            "POST",
            &format!("/v1/keys/{rsa}/prf-create"),
            Some(json!({"lease_secs": null})),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "conflict"), "{b}");
    let (s, b) = cell
        .call(
            "POST",
            &format!("/v1/keys/{u}/rsa-partial"),
            Some(KEY_A),
            Some(&user),
            Some(json!({"input": b64(&[2])})),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "bad_request"),
        "{b}"
    );

    let (s, b) = fix(&cell, &u, &[&[0u8; 32][..]]).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "bad_request"),
        "{b}"
    );
    let (s, b) = fix(&cell, &u, &[]).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "bad_request"),
        "{b}"
    );
}

#[tokio::test]
async fn prf_keys_are_listed_leased_and_deleted_as_keys() {
    let cell = TestCell::new();
    cell.init_token().await;
    let u = uid(5);
    let own = create(&cell, &u, Some(60)).await;
    assert_eq!(fix(&cell, &u, &[&own]).await.0, StatusCode::OK);
    let (_, b) = cell.a("GET", "/v1/keys", None).await;
    assert_eq!(b["keys"][0]["kind"], "prf", "{b}");
    assert_eq!(b["keys"][0]["uid"], u);
    assert!(b["keys"][0]["lease_remaining_secs"].as_u64().unwrap() <= 60);
    let (s, b) = cell
        .a(
            "POST",
            "/v1/keys/lease",
            Some(json!({"uids": [u], "lease_secs": null})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(
        b["keys"][0]["lease_remaining_secs"].is_null(),
        "permanent: {b}"
    );
    let (s, _) = cell.a("DELETE", &format!("/v1/keys/{u}"), None).await;
    assert_eq!(s, StatusCode::OK);
    let (_, b) = cell.a("GET", "/v1/keys", None).await;
    assert_eq!(b["keys"], json!([]));
    // The uid is free again: a new share, a new commitment.
    assert_ne!(create(&cell, &u, None).await, own);
}

/// A restart keeps the share and its fixed list (sealed with the master key).
#[tokio::test]
async fn a_reopened_cell_evaluates_the_same_share() {
    let mut cell = TestCell::new();
    cell.init_token().await;
    let u = uid(6);
    let own = create(&cell, &u, None).await;
    assert_eq!(fix(&cell, &u, &[&own]).await.0, StatusCode::OK);
    cell.state = cell.reopen();
    let user = cell.login("user", USER_PIN).await.unwrap();
    let blinding = Blinding::new(b"y").unwrap();
    let (s, b) = evaluate(&cell, &user, &u, &blinding.blinded().to_bytes()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let z = Element::from_bytes(&unb64(&b["evaluated"])).unwrap();
    let proof = Proof::from_bytes(&unb64(&b["proof"])).unwrap();
    verify(
        &Element::from_bytes(&own).unwrap(),
        blinding.blinded(),
        &z,
        &proof,
    )
    .unwrap();
}
