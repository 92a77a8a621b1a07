//! Master-key rotation: every share re-sealed under a new key while the cell serves; a
//! rotation stopped between batches (as by a crash) leaves every share readable after a
//! restart and resumes with the same key; afterwards the old key opens nothing.

mod common;

use axum::http::StatusCode;
use common::*;
use keyfrag_core::rsa_share::split_exponent;
use keyfrag_server::rotation::rotate;
use keyfrag_server::sealing::{MasterKey, sibling};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde_json::{Value, json};

const KEYS: u8 = 3;

/// Token A with `KEYS` keys stored; their partials of one input, in order.
async fn cell_with_keys() -> (TestCell, Vec<String>, Vec<Value>) {
    let cell = TestCell::new();
    cell.init_token().await;
    let mut uids = Vec::new();
    for i in 0..KEYS {
        let key = rsa::PrivateKey::new(
            &mut getrandom::rand_core::UnwrapErr(getrandom::SysRng),
            1024,
        )
        .unwrap();
        let modulus = key.n().as_ref().to_be_bytes_trimmed_vartime().into_vec();
        let share = split_exponent(&key.d().to_be_bytes(), 1024, 2)
            .unwrap()
            .remove(0);
        let uid = uid(0x50 + i);
        let body = put_body(&modulus, share.negative, share.magnitude.expose(), None);
        let (s, b) = cell.a("PUT", &format!("/v1/keys/{uid}"), Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        uids.push(uid);
    }
    let before = partials(&cell, &cell.state, &uids).await;
    (cell, uids, before)
}

async fn partials(
    cell: &TestCell,
    state: &keyfrag_server::AppState,
    uids: &[String],
) -> Vec<Value> {
    let user = cell.login("user", USER_PIN).await.unwrap();
    let mut out = Vec::new();
    for uid in uids {
        let path = format!("/v1/keys/{uid}/rsa-partial");
        let body = json!({"input": b64(&[0x07; 100]), "epoch": 1});
        let (s, b) = call(state, "POST", &path, Some(KEY_A), Some(&user), Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        out.push(b["output"].clone());
    }
    out
}

#[tokio::test]
async fn a_rotation_stopped_between_batches_leaves_every_share_readable_and_resumes() {
    let (cell, uids, before) = cell_with_keys().await;
    let file = cell.config.master_key_file.clone();
    let old = std::fs::read_to_string(&file).unwrap();

    let state = &cell.state;
    let first = rotate(state.store().as_ref(), state.master_key(), 1, Some(1)).unwrap();
    assert_eq!((first.resealed, first.finished), (1, false));
    let next = sibling(&file, "next");
    assert!(next.exists() && file.exists());
    // "Crash": a new process over the same files reads every share, old and new key alike.
    let restarted = cell.reopen();
    assert_eq!(partials(&cell, &restarted, &uids).await, before);
    assert_eq!(restarted.master_key().current_id(), first.key_id);

    let done = rotate(restarted.store().as_ref(), restarted.master_key(), 1, None).unwrap();
    assert_eq!(done.key_id, first.key_id, "resumed with the same key");
    assert!(done.finished && done.resealed == KEYS as usize - 1);
    assert!(!next.exists());
    assert_ne!(std::fs::read_to_string(&file).unwrap(), old);
    assert!(
        restarted
            .store()
            .shares_to_reseal(&hex::decode(&done.key_id).unwrap(), 10)
            .unwrap()
            .is_empty()
    );

    // Only the new key in place: every share still opens; the old key alone opens none.
    let retired: Vec<_> = std::fs::read_dir(cell.dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains("master.key.retired-"))
        .collect();
    assert_eq!(retired.len(), 1);
    std::fs::remove_file(&retired[0]).unwrap();
    let fresh = cell.reopen();
    assert_eq!(partials(&cell, &fresh, &uids).await, before);
    let mut old_key = [0u8; 32];
    hex::decode_to_slice(old.trim(), &mut old_key).unwrap();
    let old_master = MasterKey::from_bytes(old_key);
    let store = fresh.store();
    for uid in &uids {
        let shares = store.key_shares("a", uid, now()).unwrap().unwrap();
        let row = &shares.key;
        let e = old_master
            .open_share("a", uid, row.epoch, row.format, &row.sealed_share)
            .unwrap_err();
        assert!(e.contains("does not hold"), "{e}");
    }
}

#[tokio::test]
async fn the_admin_route_rotates_while_the_cell_serves() {
    let (cell, uids, before) = cell_with_keys().await;
    let hash: [u8; 32] = hex::decode(sha256_hex("op")).unwrap().try_into().unwrap();
    let state = cell.state.clone().with_operator_key(hash);
    let (s, b) = call(
        &state,
        "POST",
        "/v1/admin/master-key/rotate",
        Some("op"),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["resealed"], KEYS as u64);
    assert_eq!(partials(&cell, &state, &uids).await, before);
    let (s, _) = call(
        &state,
        "POST",
        "/v1/admin/master-key/rotate",
        Some(KEY_A),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Twice in a row: nothing left to re-seal under the newest key... until the next one.
    let (s, b) = call(
        &state,
        "POST",
        "/v1/admin/master-key/rotate",
        Some("op"),
        None,
        None,
    )
    .await;
    assert_eq!(
        (s, b["resealed"].as_u64()),
        (StatusCode::OK, Some(KEYS as u64)),
        "{b}"
    );
}

fn now() -> u64 {
    keyfrag_server::routes::now_secs()
}
