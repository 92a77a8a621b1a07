//! `GET /v1/objects`, `POST /v1/objects/stage`, `/commit`, `/abort`: public metadata, written
//! in two phases so that all cells converge on the same objects (and the same hash).

use std::collections::HashSet;

use axum::extract::State;
use axum::{Extension, Json};
use keyfrag_proto::objects::{
    CommitResponse, ObjectsResponse, PendingResponse, StageRequest, TxRequest, TxStatusResponse,
    metadata_hash,
};
use keyfrag_proto::token::Ack;
use sha2::{Digest, Sha256};

use super::{ApiJson, ack, check_uid};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<ObjectsResponse>> {
    let meta = state.db(move |s| s.metadata(&caller.token)).await?;
    Ok(Json(ObjectsResponse {
        metadata_hash: metadata_hash(&meta.label, &meta.objects),
        objects: meta.objects,
    }))
}

pub(crate) fn validate(req: &StageRequest) -> ApiResult<()> {
    check_uid("txid", &req.txid)?;
    let mut seen = HashSet::new();
    for o in &req.puts {
        check_uid("object id", &o.id)?;
        if let Some(k) = &o.key_uid {
            check_uid("key uid", k)?;
        }
        if !seen.insert(o.id.as_str()) {
            return Err(ApiError::bad_request(format!("object {} put twice", o.id)));
        }
    }
    for id in &req.deletes {
        check_uid("object id", id)?;
        // Both would make the outcome depend on the order of application.
        if !seen.insert(id.as_str()) {
            return Err(ApiError::bad_request(format!(
                "object {id} appears twice in one transaction"
            )));
        }
    }
    Ok(())
}

pub async fn stage(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<StageRequest>,
) -> ApiResult<Json<Ack>> {
    validate(&req)?;
    // Same content ⇔ same canonical JSON of the parsed request (serde's output is
    // deterministic for equal values).
    let json = serde_json::to_vec(&req).map_err(ApiError::internal)?;
    let hash: [u8; 32] = Sha256::digest(&json).into();
    state
        .db(move |s| s.stage(&caller.token, &req, &hash))
        .await?;
    Ok(ack())
}

pub async fn commit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<TxRequest>,
) -> ApiResult<Json<CommitResponse>> {
    check_uid("txid", &req.txid)?;
    let meta = state
        .db(move |s| s.commit(&caller.token, &req.txid))
        .await?;
    Ok(Json(CommitResponse {
        metadata_hash: metadata_hash(&meta.label, &meta.objects),
    }))
}

pub async fn abort(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<TxRequest>,
) -> ApiResult<Json<Ack>> {
    check_uid("txid", &req.txid)?;
    state.db(move |s| s.abort(&caller.token, &req.txid)).await?;
    Ok(ack())
}

/// How many pending transactions one answer lists (a client reconciles them in rounds).
const PENDING_LIMIT: usize = 64;

pub async fn pending(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<PendingResponse>> {
    let staged = state
        .db(move |s| s.pending(&caller.token, PENDING_LIMIT))
        .await?;
    Ok(Json(PendingResponse { staged }))
}

pub async fn status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<TxRequest>,
) -> ApiResult<Json<TxStatusResponse>> {
    check_uid("txid", &req.txid)?;
    let st = state
        .db(move |s| s.tx_status(&caller.token, &req.txid))
        .await?;
    Ok(Json(TxStatusResponse {
        status: st.status,
        abandoned: st.abandoned,
    }))
}
