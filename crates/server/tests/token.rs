//! Token initialisation, login, PIN counters and locks, logout.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

fn init_body(phase: &str, so_pin: &str, label: &str) -> Option<serde_json::Value> {
    Some(json!({"phase": phase, "so_pin": so_pin, "label": label}))
}

#[tokio::test]
async fn first_init_check_changes_nothing_then_apply_initialises() {
    let cell = TestCell::new();
    let (s, b) = cell
        .a("POST", "/v1/token/init", init_body("check", "123", "x"))
        .await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "pin_len_range"));
    let (s, b) = cell
        .a("POST", "/v1/token/init", init_body("check", SO_PIN, "x"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["initialized"], false);
    assert_eq!(
        cell.login("so", SO_PIN).await,
        Err("token_not_initialized".into())
    );
    let (s, b) = cell
        .a(
            "POST",
            "/v1/token/init",
            init_body("apply", SO_PIN, "my token"),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["initialized"], true);
    assert_eq!(b["label"], "my token");
    assert_eq!(b["user_pin_initialized"], false);
    assert_eq!(
        b["metadata_hash"],
        keyfrag_proto::objects::metadata_hash("my token", &[])
    );
    assert_eq!(
        cell.login("user", USER_PIN).await,
        Err("user_pin_not_initialized".into())
    );
}

#[tokio::test]
async fn reinit_needs_the_so_pin_and_wipes_everything() {
    let cell = TestCell::new();
    let so = cell.init_token().await;
    let user = cell.login("user", USER_PIN).await.unwrap();
    let (s, _) = cell
        .a(
            "PUT",
            &format!("/v1/keys/{}", uid(1)),
            Some(put_body(&fake_modulus(), false, &random(92), None)),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = cell
        .a(
            "POST",
            "/v1/token/init",
            init_body("check", "wrong-pin", "x"),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "pin_incorrect"));
    assert_eq!(cell.token_status().await["so_pin_count_low"], true);
    let (s, _) = cell
        .a(
            "POST",
            "/v1/token/init",
            init_body("apply", SO_PIN, "fresh"),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let st = cell.token_status().await;
    assert_eq!(st["label"], "fresh");
    assert_eq!(st["user_pin_initialized"], false);
    assert_eq!(st["so_pin_count_low"], false);
    let (_, keys) = cell.a("GET", "/v1/keys", None).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 0);
    // Every login was revoked.
    for login in [&so, &user] {
        let (s, b) = cell
            .call(
                "POST",
                "/v1/pin/init",
                Some(KEY_A),
                Some(login),
                Some(json!({"new_pin": "5678"})),
            )
            .await;
        assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "user_not_logged_in"));
    }
    // The SO PIN stayed.
    assert!(cell.login("so", SO_PIN).await.is_ok());
}

#[tokio::test]
async fn user_pin_counts_failures_and_locks_after_ten() {
    let cell = TestCell::new();
    cell.init_token().await;
    assert_eq!(
        cell.login("user", "bad1").await,
        Err("pin_incorrect".into())
    );
    let st = cell.token_status().await;
    assert_eq!(
        (
            st["user_pin_count_low"].clone(),
            st["user_pin_final_try"].clone()
        ),
        (json!(true), json!(false))
    );
    // A success resets the counter.
    cell.login("user", USER_PIN).await.unwrap();
    assert_eq!(cell.token_status().await["user_pin_count_low"], false);
    for _ in 0..9 {
        assert_eq!(
            cell.login("user", "bad1").await,
            Err("pin_incorrect".into())
        );
    }
    assert_eq!(cell.token_status().await["user_pin_final_try"], true);
    assert_eq!(
        cell.login("user", "bad1").await,
        Err("pin_incorrect".into())
    );
    let st = cell.token_status().await;
    assert_eq!(st["user_pin_locked"], true);
    assert_eq!(st["user_pin_count_low"], false);
    assert_eq!(cell.login("user", USER_PIN).await, Err("pin_locked".into()));
    // The counter survives a restart.
    let (_, st) = call(&cell.reopen(), "GET", "/v1/token", Some(KEY_A), None, None).await;
    assert_eq!(st["user_pin_locked"], true);
    // The SO unlocks by setting a new user PIN.
    let so = cell.login("so", SO_PIN).await.unwrap();
    let (s, _) = cell
        .call(
            "POST",
            "/v1/pin/init",
            Some(KEY_A),
            Some(&so),
            Some(json!({"new_pin": "4321"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(cell.token_status().await["user_pin_locked"], false);
    assert!(cell.login("user", "4321").await.is_ok());
}

#[tokio::test]
async fn so_pin_locks_too() {
    let cell = TestCell::new();
    cell.init_token().await;
    for _ in 0..10 {
        assert_eq!(cell.login("so", "nope").await, Err("pin_incorrect".into()));
    }
    assert_eq!(cell.token_status().await["so_pin_locked"], true);
    assert_eq!(cell.login("so", SO_PIN).await, Err("pin_locked".into()));
    let (s, b) = cell
        .a("POST", "/v1/token/init", init_body("check", SO_PIN, "x"))
        .await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "pin_locked"));
}

#[tokio::test]
async fn pin_init_needs_an_so_login_and_pin_set_checks_the_old_pin() {
    let cell = TestCell::new();
    cell.init_token().await;
    let user = cell.login("user", USER_PIN).await.unwrap();
    // A user login is not an SO login.
    let (s, b) = cell
        .call(
            "POST",
            "/v1/pin/init",
            Some(KEY_A),
            Some(&user),
            Some(json!({"new_pin": "9999"})),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "user_not_logged_in"));
    let (s, b) = cell
        .call(
            "POST",
            "/v1/pin/set",
            Some(KEY_A),
            None,
            Some(json!({"old_pin": USER_PIN, "new_pin": "9999"})),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "user_not_logged_in"));
    let set = |old: &str, new: &str| Some(json!({"old_pin": old, "new_pin": new}));
    let (s, b) = cell
        .call(
            "POST",
            "/v1/pin/set",
            Some(KEY_A),
            Some(&user),
            set(USER_PIN, "12"),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "pin_len_range"));
    let (s, b) = cell
        .call(
            "POST",
            "/v1/pin/set",
            Some(KEY_A),
            Some(&user),
            set("wrong", "9999"),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "pin_incorrect"));
    assert_eq!(cell.token_status().await["user_pin_count_low"], true);
    let (s, _) = cell
        .call(
            "POST",
            "/v1/pin/set",
            Some(KEY_A),
            Some(&user),
            set(USER_PIN, "9999"),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        cell.login("user", USER_PIN).await,
        Err("pin_incorrect".into())
    );
    assert!(cell.login("user", "9999").await.is_ok());
    // The SO changes its own PIN with an SO login.
    let so = cell.login("so", SO_PIN).await.unwrap();
    let (s, _) = cell
        .call(
            "POST",
            "/v1/pin/set",
            Some(KEY_A),
            Some(&so),
            set(SO_PIN, "new-so-pin"),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(cell.login("so", "new-so-pin").await.is_ok());
}

#[tokio::test]
async fn logins_survive_a_restart_and_logout_revokes() {
    let cell = TestCell::new();
    let so = cell.init_token().await;
    let restarted = cell.reopen();
    let (s, _) = call(
        &restarted,
        "POST",
        "/v1/pin/init",
        Some(KEY_A),
        Some(&so),
        Some(json!({"new_pin": "2468"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = cell
        .call("POST", "/v1/logout", Some(KEY_A), Some(&so), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    // Idempotent.
    let (s, _) = cell
        .call("POST", "/v1/logout", Some(KEY_A), Some(&so), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = cell
        .call(
            "POST",
            "/v1/pin/init",
            Some(KEY_A),
            Some(&so),
            Some(json!({"new_pin": "2468"})),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "user_not_logged_in"));
}
