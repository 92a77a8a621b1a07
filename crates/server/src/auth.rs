//! Who is calling: the access key (every route) selects the token; a login token (private-key
//! routes, PIN changes) proves a PIN was presented to this cell.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keyfrag_proto::token::UserKind;
use keyfrag_proto::{ErrorCode, LOGIN_HEADER};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::Store;

/// The token an authenticated request is scoped to (a request extension).
#[derive(Clone, Debug)]
pub struct Caller {
    pub token: String,
}

/// Middleware in front of every route, including unknown ones: no valid access key, no service.
pub async fn require_access_key(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let key = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let token = match key {
        Some(k) => state.token_for_access_key(k).await,
        None => None,
    };
    match token {
        Some(token) if !state.admit(&token) => {
            state.metrics().record_rate_limited(&token);
            ApiError::new(
                ErrorCode::RateLimited,
                "too many requests for this token: slow down and retry",
            )
            .into_response()
        }
        Some(token) => {
            req.extensions_mut().insert(Caller { token });
            next.run(req).await
        }
        None => {
            ApiError::new(ErrorCode::Unauthorized, "missing or unknown access key").into_response()
        }
    }
}

/// SHA-256 of the login token in `x-keyfrag-login`: what the store keeps and looks up.
pub fn login_hash(headers: &HeaderMap) -> Option<[u8; 32]> {
    let value = headers.get(LOGIN_HEADER)?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| Sha256::digest(value.as_bytes()).into())
}

fn not_logged_in() -> ApiError {
    ApiError::new(
        ErrorCode::UserNotLoggedIn,
        "a valid login token is required",
    )
}

/// The login this request carries, if it is live for the caller's token and of kind `want`
/// (any kind when `None`).
pub async fn require_login(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    want: Option<UserKind>,
) -> ApiResult<(UserKind, [u8; 32])> {
    let hash = login_hash(headers).ok_or_else(not_logged_in)?;
    let token = caller.token.clone();
    let kind = state
        .db(move |s| s.login_kind(&token, &hash))
        .await?
        .ok_or_else(not_logged_in)?;
    match want {
        Some(w) if w != kind => Err(not_logged_in()),
        _ => Ok((kind, hash)),
    }
}

/// `require_login` for a route already on the blocking pool: the same checks and refusals,
/// with the store called directly (no extra hop to the pool).
pub fn require_login_blocking(
    store: &dyn Store,
    token: &str,
    hash: Option<[u8; 32]>,
    want: Option<UserKind>,
) -> ApiResult<(UserKind, [u8; 32])> {
    let hash = hash.ok_or_else(not_logged_in)?;
    let kind = store.login_kind(token, &hash)?.ok_or_else(not_logged_in)?;
    match want {
        Some(w) if w != kind => Err(not_logged_in()),
        _ => Ok((kind, hash)),
    }
}
