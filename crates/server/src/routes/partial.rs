//! `POST /v1/keys/{uid}/rsa-partial`: x'^(2·dᵢ) mod N for a logged-in user, under the epoch
//! the request names — the committed one, or the one before until its refresh is finalized
//! (docs/REFRESH.md). A pending epoch is never served.

use std::time::Instant;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::{Extension, Json};
use keyfrag_core::rsa_partial::rsa_partial as compute_partial;
use keyfrag_proto::ErrorCode;
use keyfrag_proto::keys::{RsaPartialRequest, RsaPartialResponse};
use keyfrag_proto::token::UserKind;

use super::keys::{KIND_RSA, key_not_found};
use super::{ApiJson, UidPath, now_secs};
use crate::audit;
use crate::auth::{Caller, require_login};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::KeyShares;

/// The sealed share serving `want` (None: the committed one): (epoch, format, ciphertext).
pub(crate) fn share_for(k: &KeyShares, want: Option<u64>) -> ApiResult<(u64, u32, Vec<u8>)> {
    let current = k.key.epoch;
    match (want, &k.previous) {
        (None, _) => Ok((current, k.key.format, k.key.sealed_share.clone())),
        (Some(e), _) if e == current => Ok((current, k.key.format, k.key.sealed_share.clone())),
        (Some(e), Some(p)) if e == p.epoch => Ok((p.epoch, p.format, p.sealed_share.clone())),
        (Some(e), previous) => {
            let served = match previous {
                Some(p) => format!("epochs {current} and {}", p.epoch),
                None => format!("epoch {current}"),
            };
            Err(ApiError::new(
                ErrorCode::EpochUnknown,
                format!("key {} serves {served}, not {e}", k.key.uid),
            ))
        }
    }
}

/// The input is blinded by the module, so the cell learns nothing from it; it is still never
/// logged.
pub async fn rsa_partial(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    UidPath(uid): UidPath,
    ApiJson(req): ApiJson<RsaPartialRequest>,
) -> ApiResult<Json<RsaPartialResponse>> {
    let token = caller.token.clone();
    require_login(&state, &caller, &headers, Some(UserKind::User)).await?;
    let now = now_secs();
    let (t, u) = (token.clone(), uid.clone());
    let key = state
        .db(move |s| s.key_shares(&t, &u, now))
        .await?
        .ok_or_else(|| key_not_found(&uid))?;
    if key.key.kind != KIND_RSA {
        return Err(ApiError::bad_request(format!(
            "key {uid} is not an RSA key"
        )));
    }
    let (epoch, format, sealed) = share_for(&key, req.epoch)?;
    let renew = key
        .key
        .lease_secs
        .zip(key.key.expires_at)
        .is_some_and(|(lease, expires)| expires.saturating_sub(now) < lease / 2);
    let (master, t, u) = (state.master_key().clone(), token.clone(), uid.clone());
    let modulus = key.key.modulus.clone();
    let result = tokio::task::spawn_blocking(move || {
        let share = master.open_share(&t, &u, epoch, format, &sealed)?;
        let started = Instant::now();
        let out = compute_partial(&modulus, &req.input, &share);
        Ok::<_, String>((out, started.elapsed()))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let (output, elapsed) = result;
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            audit::record(&token, &uid, "rsa-partial", "bad-input");
            return Err(match e {
                keyfrag_core::Error::InvalidInput(_) | keyfrag_core::Error::DataTooLarge => {
                    ApiError::bad_request(format!("input rejected: {e}"))
                }
                other => ApiError::internal(other),
            });
        }
    };
    if renew {
        let (t, u) = (token.clone(), uid.clone());
        state
            .db(move |s| s.renew_leases(&t, &[u], None, now))
            .await?;
    }
    audit::record(&token, &uid, "rsa-partial", "ok");
    Ok(Json(RsaPartialResponse {
        output,
        epoch,
        current_epoch: key.key.epoch,
        previous_epoch: key.previous.as_ref().map(|p| p.epoch),
        compute_us: elapsed.as_micros() as u64,
    }))
}
