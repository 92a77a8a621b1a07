//! Proactive refresh: `POST /v1/keys/{uid}/refresh/{deal,prepare,check,commit,finalize,abort}`
//! (wire in `keyfrag_proto::refresh`; the steps in `crate::refresh`). The access key selects
//! the token; no login is needed.

use axum::extract::State;
use axum::{Extension, Json};
use keyfrag_proto::refresh::{
    AbortRequest, CheckResponse, CommitRequest, DealRequest, DealResponse, EpochResponse,
    PrepareRequest, SessionRequest,
};
use keyfrag_proto::token::Ack;

use super::{ApiJson, UidPath, ack};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::refresh;
use crate::state::AppState;

/// Run one step on the blocking pool (steps compute partials and write the store).
async fn blocking<T: Send + 'static>(
    state: AppState,
    caller: Caller,
    uid: String,
    step: impl FnOnce(&AppState, &str, &str) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(move || step(&state, &caller.token, &uid))
        .await
        .map_err(ApiError::internal)?
}

/// While a backup holds refresh paused, no run starts (DEAL) or moves a share forward
/// (PREPARE); COMMIT, FINALIZE and ABORT still run, so runs already under way can finish or be
/// recovered, and every cell's snapshot stays one a recovery accepts.
fn refuse_if_paused(state: &AppState) -> ApiResult<()> {
    if state.maintenance().refresh_paused(super::now_secs()) {
        return Err(ApiError::new(
            keyfrag_proto::ErrorCode::RefreshPaused,
            "refresh is paused on this cell while a backup runs; retry once it ends",
        ));
    }
    Ok(())
}

pub async fn deal(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    UidPath(uid): UidPath,
    ApiJson(req): ApiJson<DealRequest>,
) -> ApiResult<Json<DealResponse>> {
    refuse_if_paused(&state)?;
    blocking(state, caller, uid, |s, t, u| refresh::deal(s, t, u, req))
        .await
        .map(Json)
}

pub async fn prepare(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    UidPath(uid): UidPath,
    ApiJson(req): ApiJson<PrepareRequest>,
) -> ApiResult<Json<CheckResponse>> {
    refuse_if_paused(&state)?;
    blocking(state, caller, uid, |s, t, u| refresh::prepare(s, t, u, req))
        .await
        .map(Json)
}

pub async fn check(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    UidPath(uid): UidPath,
    ApiJson(req): ApiJson<SessionRequest>,
) -> ApiResult<Json<CheckResponse>> {
    blocking(state, caller, uid, move |s, t, u| {
        refresh::check(s, t, u, &req.session)
    })
    .await
    .map(Json)
}

pub async fn commit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    UidPath(uid): UidPath,
    ApiJson(req): ApiJson<CommitRequest>,
) -> ApiResult<Json<EpochResponse>> {
    blocking(state, caller, uid, |s, t, u| refresh::commit(s, t, u, req))
        .await
        .map(Json)
}

pub async fn finalize(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    UidPath(uid): UidPath,
    ApiJson(req): ApiJson<SessionRequest>,
) -> ApiResult<Json<EpochResponse>> {
    blocking(state, caller, uid, move |s, t, u| {
        refresh::finalize(s, t, u, &req.session)
    })
    .await
    .map(Json)
}

pub async fn abort(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    UidPath(uid): UidPath,
    ApiJson(req): ApiJson<AbortRequest>,
) -> ApiResult<Json<Ack>> {
    blocking(state, caller, uid, |s, t, u| refresh::abort(s, t, u, req)).await?;
    Ok(ack())
}
