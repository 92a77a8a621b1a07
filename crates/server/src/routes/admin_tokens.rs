//! `/v1/admin/tokens` and `/v1/admin/access-keys`: the operator creates tokens and issues and
//! revokes their access keys. Every change to the keys rebuilds the cell's in-memory key map
//! before answering, so a revoke is in force when the operator sees it succeed.

use axum::Json;
use axum::extract::{Query, State};
use keyfrag_proto::admin::{
    AccessKeyEntry, AccessKeyList, AccessKeyRequest, Changed, CreateTokenRequest, RevokeRequest,
    TokenRequest,
};
use serde::Deserialize;

use super::{ApiJson, now_secs};
use crate::config::parse_sha256_hex;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::AddKey;

/// PKCS#11 token labels are 32 bytes; the token id doubles as the label.
const MAX_TOKEN_BYTES: usize = 32;
const MAX_NAME_BYTES: usize = 64;

fn check_token_id(token: &str) -> ApiResult<()> {
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES || token.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "token label must be 1 to {MAX_TOKEN_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

fn check_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !ok {
        return Err(ApiError::bad_request(format!(
            "access key name must be 1 to {MAX_NAME_BYTES} of A-Z a-z 0-9 . _ - @"
        )));
    }
    Ok(())
}

async fn known(state: &AppState, token: &str) -> ApiResult<()> {
    if state.knows_token(token).await? {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "no token {token:?} on this cell"
        )))
    }
}

pub async fn create_token(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> ApiResult<Json<Changed>> {
    check_token_id(&req.token)?;
    if state.token_in_config(&req.token) {
        return Err(ApiError::conflict(format!(
            "token {:?} is declared in this cell's config, not created by the operator",
            req.token
        )));
    }
    let t = req.token.clone();
    let (initialized, created_before) = state
        .db(move |s| {
            let created = s.operator_tokens()?.contains(&t);
            Ok((s.token_state(&t)?.initialized, created))
        })
        .await?;
    if initialized && created_before {
        return Ok(Json(Changed { changed: false }));
    }
    // The verifier first: a PIN of the wrong length leaves nothing behind.
    let verifier = super::token::new_verifier(&state, req.so_pin).await?;
    let t = req.token.clone();
    state
        .db(move |s| {
            s.create_token(&t, now_secs())?;
            s.init_token(&t, false, Some(&verifier), &t)
        })
        .await?;
    tracing::info!(target: "audit", token = %req.token, "token created by the operator");
    Ok(Json(Changed { changed: true }))
}

pub async fn remove_token(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TokenRequest>,
) -> ApiResult<Json<Changed>> {
    let t = req.token.clone();
    let changed = state.db(move |s| s.remove_new_token(&t)).await?;
    if changed {
        tracing::info!(target: "audit", token = %req.token, "token creation undone");
    }
    Ok(Json(Changed { changed }))
}

fn key_hash(req: &AccessKeyRequest) -> ApiResult<[u8; 32]> {
    parse_sha256_hex(&req.key_sha256)
        .ok_or_else(|| ApiError::bad_request("key_sha256 must be 64 hex digits"))
}

pub async fn issue(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<AccessKeyRequest>,
) -> ApiResult<Json<Changed>> {
    check_name(&req.name)?;
    let hash = key_hash(&req)?;
    known(&state, &req.token).await?;
    let (t, n) = (req.token.clone(), req.name.clone());
    let outcome = state
        .db(move |s| s.add_access_key(&t, &n, &hash, now_secs()))
        .await?;
    match outcome {
        AddKey::Added => {
            state.reload_access_keys().await?;
            tracing::info!(target: "audit", token = %req.token, name = %req.name,
                "access key issued");
            Ok(Json(Changed { changed: true }))
        }
        AddKey::AlreadyThere => Ok(Json(Changed { changed: false })),
        AddKey::NameTaken => Err(ApiError::conflict(format!(
            "token {:?} already has an access key named {:?} (names are never reused)",
            req.token, req.name
        ))),
    }
}

pub async fn remove_key(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<AccessKeyRequest>,
) -> ApiResult<Json<Changed>> {
    let hash = key_hash(&req)?;
    let (t, n) = (req.token.clone(), req.name.clone());
    let changed = state
        .db(move |s| s.remove_access_key(&t, &n, &hash))
        .await?;
    state.reload_access_keys().await?;
    Ok(Json(Changed { changed }))
}

pub async fn revoke(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> ApiResult<Json<Changed>> {
    known(&state, &req.token).await?;
    let (t, n) = (req.token.clone(), req.name.clone());
    let (changed, exists) = state
        .db(move |s| {
            let changed = s.revoke_access_key(&t, &n, now_secs())?;
            let exists = s.access_keys(&t)?.iter().any(|k| k.name == n);
            Ok((changed, exists))
        })
        .await?;
    if !exists {
        return Err(ApiError::not_found(format!(
            "token {:?} has no access key named {:?}",
            req.token, req.name
        )));
    }
    state.reload_access_keys().await?;
    if changed {
        tracing::info!(target: "audit", token = %req.token, name = %req.name,
            "access key revoked");
    }
    Ok(Json(Changed { changed }))
}

#[derive(Deserialize)]
pub struct ListQuery {
    token: String,
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<AccessKeyList>> {
    known(&state, &q.token).await?;
    let t = q.token.clone();
    let keys = state.db(move |s| s.access_keys(&t)).await?;
    Ok(Json(AccessKeyList {
        keys: keys
            .into_iter()
            .map(|k| AccessKeyEntry {
                name: k.name,
                created_at: k.created_at,
                last_used: k.last_used,
                revoked_at: k.revoked_at,
            })
            .collect(),
    }))
}
