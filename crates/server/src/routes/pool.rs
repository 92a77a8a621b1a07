//! The key pool (issue 4): `GET /v1/keys/pool` lists the token's keys generated ahead of time
//! (a keygen started with `pooled`), `POST /v1/keys/{uid}/claim` takes one out for use.
//!
//! Like key generation, both need the token's access key and no login: a pooled key is usable
//! only after a login anyway. A pooled key is refused partials (409) until claimed, so a key
//! claimed on some cells and not yet on others cannot sign with a mix; refreshes include it
//! like any token key.

use axum::extract::State;
use axum::{Extension, Json};
use keyfrag_proto::keys::{ClaimRequest, PoolEntry, PoolList};
use keyfrag_proto::token::Ack;

use super::keys::{check_lease, key_not_found};
use super::{ApiJson, UidPath, ack, now_secs};
use crate::audit;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::ClaimOutcome;

/// The refusal of any use of a key still in the pool (and of a second claim).
pub(crate) fn in_pool(uid: &str) -> ApiError {
    ApiError::conflict(format!(
        "key {uid} is in the pool: claim it (POST /v1/keys/{uid}/claim) before use"
    ))
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<PoolList>> {
    let now = now_secs();
    let keys = state.db(move |s| s.pool(&caller.token, now)).await?;
    Ok(Json(PoolList {
        keys: keys
            .into_iter()
            .map(|k| PoolEntry {
                uid: k.uid,
                bits: k.bits,
                modulus: k.modulus,
                public_exponent: k.public_exponent,
            })
            .collect(),
    }))
}

/// Atomic on this cell: of concurrent claims exactly one succeeds, the others get 409.
pub async fn claim(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    UidPath(uid): UidPath,
    ApiJson(req): ApiJson<ClaimRequest>,
) -> ApiResult<Json<Ack>> {
    check_lease(req.lease_secs)?;
    let now = now_secs();
    let (t, u) = (caller.token.clone(), uid.clone());
    let outcome = state
        .db(move |s| s.claim(&t, &u, req.lease_secs, now))
        .await?;
    match outcome {
        ClaimOutcome::Claimed => {
            audit::record(&caller.token, &uid, "pool-claim", "ok");
            Ok(ack())
        }
        ClaimOutcome::NotPooled => {
            audit::record(&caller.token, &uid, "pool-claim", "not-pooled");
            Err(ApiError::conflict(format!("key {uid} is not in the pool")))
        }
        ClaimOutcome::Unknown => Err(key_not_found(&uid)),
    }
}
