//! `POST /v1/login`, `/v1/logout`, `/v1/pin/init`, `/v1/pin/set`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::{Extension, Json};
use keyfrag_proto::ErrorCode;
use keyfrag_proto::token::{
    Ack, InitPinRequest, LoginRequest, LoginResponse, SetPinRequest, UserKind,
};
use sha2::{Digest, Sha256};

use super::token::{new_verifier, verify_pin_counted};
use super::{ApiJson, ack};
use crate::audit;
use crate::auth::{Caller, login_hash, require_login};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

fn kind_name(kind: UserKind) -> &'static str {
    match kind {
        UserKind::User => "user",
        UserKind::So => "so",
    }
}

pub async fn login(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let token = caller.token.clone();
    let t = token.clone();
    if !state.db(move |s| s.token_state(&t)).await?.initialized {
        return Err(ApiError::new(
            ErrorCode::TokenNotInitialized,
            "the token is not initialised",
        ));
    }
    let op = format!("login-{}", kind_name(req.user));
    if let Err(e) = verify_pin_counted(&state, &token, req.user, req.pin.clone()).await {
        audit::record(&token, "token", &op, &format!("{:?}", e.code));
        return Err(e);
    }
    // The token is random; the cell keeps only its hash, so the database cannot replay it.
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(ApiError::internal)?;
    let login_token = hex::encode(raw);
    let hash: [u8; 32] = Sha256::digest(login_token.as_bytes()).into();
    let (t, kind) = (token.clone(), req.user);
    state.db(move |s| s.add_login(&t, &hash, kind)).await?;
    audit::record(&token, "token", &op, "ok");
    Ok(Json(LoginResponse { login_token }))
}

/// Revoking an unknown or already revoked login succeeds: logout is idempotent.
pub async fn logout(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> ApiResult<Json<Ack>> {
    let hash = login_hash(&headers)
        .ok_or_else(|| ApiError::new(ErrorCode::UserNotLoggedIn, "no login token to revoke"))?;
    let token = caller.token;
    state.db(move |s| s.remove_login(&token, &hash)).await?;
    Ok(ack())
}

/// C_InitPIN (SO logged in). Existing user logins are revoked: a PIN reset is how a
/// compromised PIN is recovered from, so sessions proven with the old one must end.
pub async fn init_pin(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<InitPinRequest>,
) -> ApiResult<Json<Ack>> {
    require_login(&state, &caller, &headers, Some(UserKind::So)).await?;
    let verifier = new_verifier(&state, req.new_pin.clone()).await?;
    let token = caller.token.clone();
    state
        .db(move |s| {
            s.set_pin(&token, UserKind::User, &verifier)?;
            s.revoke_logins(&token, UserKind::User)
        })
        .await?;
    audit::record(&caller.token, "token", "init-pin", "ok");
    Ok(ack())
}

/// C_SetPIN: changes the PIN of whoever is logged in, after proving the old one (counted).
pub async fn set_pin(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SetPinRequest>,
) -> ApiResult<Json<Ack>> {
    let (kind, _) = require_login(&state, &caller, &headers, None).await?;
    // Length first, so that a malformed new PIN does not cost a try of the old one.
    crate::pin::check_len(&req.new_pin)?;
    verify_pin_counted(&state, &caller.token, kind, req.old_pin.clone()).await?;
    let verifier = new_verifier(&state, req.new_pin.clone()).await?;
    let token = caller.token.clone();
    state
        .db(move |s| s.set_pin(&token, kind, &verifier))
        .await?;
    audit::record(
        &caller.token,
        "token",
        &format!("set-pin-{}", kind_name(kind)),
        "ok",
    );
    Ok(ack())
}
