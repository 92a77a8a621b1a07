//! `POST /v1/admin/master-key/rotate` (rotation.rs): runs while the cell serves.

use axum::Json;
use axum::extract::State;
use keyfrag_proto::ErrorCode;
use keyfrag_proto::admin::RotateResponse;

use crate::error::{ApiError, ApiResult};
use crate::rotation::{BATCH, rotate};
use crate::state::AppState;

pub async fn rotate_master_key(State(state): State<AppState>) -> ApiResult<Json<RotateResponse>> {
    let (store, master) = (state.store().clone(), state.master_key().clone());
    let done = tokio::task::spawn_blocking(move || rotate(store.as_ref(), &master, BATCH, None))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| {
            // Names key ids and uids only; the operator needs to know which row failed.
            tracing::error!(error = %e, "master key rotation failed");
            ApiError::new(ErrorCode::Internal, format!("rotation stopped: {e}"))
        })?;
    Ok(Json(RotateResponse {
        key_id: done.key_id,
        resealed: done.resealed,
    }))
}
