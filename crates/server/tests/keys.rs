//! Key fragments: put/list/delete idempotency and conflicts, leases, login for partials, and
//! encryption at rest.

mod common;

use axum::http::StatusCode;
use common::*;
use keyfrag_core::rsa_share::share_bytes;
use serde_json::json;

fn key_path(n: u8) -> String {
    format!("/v1/keys/{}", uid(n))
}

#[tokio::test]
async fn put_is_idempotent_and_conflicts_on_different_content() {
    let cell = TestCell::new();
    let n = fake_modulus();
    let mag = random(share_bytes(512));
    let (s, b) = cell
        .a("PUT", &key_path(1), Some(put_body(&n, true, &mag, None)))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["bits"].clone(), b["epoch"].clone()),
        (json!(512), json!(1))
    );
    let (s, _) = cell
        .a("PUT", &key_path(1), Some(put_body(&n, true, &mag, None)))
        .await;
    assert_eq!(s, StatusCode::OK);
    for body in [
        put_body(&n, false, &mag, None),
        put_body(&n, true, &random(mag.len()), None),
    ] {
        let (s, b) = cell.a("PUT", &key_path(1), Some(body)).await;
        assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "conflict"));
    }
    let (_, b) = cell.a("GET", "/v1/keys", None).await;
    let keys = b["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["uid"], uid(1));
    assert_eq!(keys[0]["kind"], "rsa");
    assert_eq!(keys[0]["lease_remaining_secs"], json!(null));
    // Other tokens do not see it.
    let (_, b) = cell.call("GET", "/v1/keys", Some(KEY_B), None, None).await;
    assert_eq!(b["keys"].as_array().unwrap().len(), 0);
    // Delete twice: both succeed; then the uid is free again.
    for _ in 0..2 {
        let (s, _) = cell.a("DELETE", &key_path(1), None).await;
        assert_eq!(s, StatusCode::OK);
    }
    let (_, b) = cell.a("GET", "/v1/keys", None).await;
    assert_eq!(b["keys"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn bad_keys_are_refused() {
    let cell = TestCell::new();
    let n = fake_modulus();
    let mag = random(share_bytes(512));
    let mut even = n.clone();
    even[63] &= 0xfe;
    let short = vec![0xffu8; 63];
    for (path, body) in [
        (key_path(1), put_body(&even, false, &mag, None)),
        (
            key_path(1),
            put_body(&short, false, &random(share_bytes(504)), None),
        ),
        (key_path(1), put_body(&n, false, &mag[1..], None)),
        (key_path(1), put_body(&n, false, &mag, Some(0))),
        ("/v1/keys/ABCDEF".into(), put_body(&n, false, &mag, None)),
    ] {
        let (s, b) = cell.a("PUT", &path, Some(body)).await;
        assert_eq!(
            (s, code(&b)),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn leases_renew_and_expired_keys_are_swept() {
    let cell = TestCell::new();
    let n = fake_modulus();
    let mag = random(share_bytes(512));
    let (s, b) = cell
        .a(
            "PUT",
            &key_path(1),
            Some(put_body(&n, false, &mag, Some(60))),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(b["lease_remaining_secs"].as_u64().unwrap() >= 59);
    let (s, _) = cell
        .a("PUT", &key_path(2), Some(put_body(&n, false, &mag, None)))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = cell
        .a(
            "POST",
            "/v1/keys/lease",
            Some(json!({"uids": [uid(1), uid(3)], "lease_secs": 3600})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let keys = b["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "the unknown uid is not listed");
    assert!(keys[0]["lease_remaining_secs"].as_u64().unwrap() > 3000);
    // The sweeper, run as at a time past the lease, deletes only the session key.
    let store = cell.state.store();
    let later = keyfrag_server::routes::now_secs() + 4000;
    assert_eq!(store.sweep_expired(later).unwrap(), 1);
    let (_, b) = cell.a("GET", "/v1/keys", None).await;
    let keys = b["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["uid"], uid(2));
}

#[tokio::test]
async fn partials_need_a_user_login_and_a_known_key_and_epoch() {
    let cell = TestCell::new();
    let so = cell.init_token().await;
    let body = Some(json!({"input": b64(&[2])}));
    let path = format!("{}/rsa-partial", key_path(1));
    let (s, b) = cell.a("POST", &path, body.clone()).await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "user_not_logged_in"));
    let (s, b) = cell
        .call("POST", &path, Some(KEY_A), Some("deadbeef"), body.clone())
        .await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "user_not_logged_in"));
    let (s, b) = cell
        .call("POST", &path, Some(KEY_A), Some(&so), body.clone())
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "user_not_logged_in"),
        "SO is not user"
    );
    let user = cell.login("user", USER_PIN).await.unwrap();
    let (s, b) = cell
        .call("POST", &path, Some(KEY_A), Some(&user), body.clone())
        .await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "key_not_found"));
    let (s, _) = cell
        .a(
            "PUT",
            &key_path(1),
            Some(put_body(
                &fake_modulus(),
                false,
                &random(share_bytes(512)),
                None,
            )),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = cell
        .call(
            "POST",
            &path,
            Some(KEY_A),
            Some(&user),
            Some(json!({"input": b64(&[2]), "epoch": 7})),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "epoch_unknown"));
    // After logout the login is no longer accepted.
    cell.call("POST", "/v1/logout", Some(KEY_A), Some(&user), None)
        .await;
    let (s, b) = cell
        .call("POST", &path, Some(KEY_A), Some(&user), body)
        .await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "user_not_logged_in"));
}

#[tokio::test]
async fn shares_are_not_stored_in_the_clear() {
    let cell = TestCell::new();
    let mag = random(share_bytes(512));
    let (s, _) = cell
        .a(
            "PUT",
            &key_path(1),
            Some(put_body(&fake_modulus(), false, &mag, None)),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let mut scanned = 0;
    for entry in std::fs::read_dir(cell.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("cell.db") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        scanned += bytes.len();
        // No 12-byte window of the share appears anywhere (nor does the whole of it).
        for w in mag.windows(12) {
            assert!(
                !bytes.windows(12).any(|b| b == w),
                "{name} holds share bytes"
            );
        }
    }
    assert!(scanned > 0);
    // The key is still usable after a restart (the sealed share opens).
    let (_, b) = call(&cell.reopen(), "GET", "/v1/keys", Some(KEY_A), None, None).await;
    assert_eq!(b["keys"].as_array().unwrap().len(), 1);
}
