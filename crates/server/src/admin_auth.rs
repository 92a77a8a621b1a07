//! The operator's routes (`/v1/admin/...`): a separate key from every token's access key, so
//! a client of a token can never create tokens, issue access keys or take backups. The cell
//! keeps only the operator key's SHA-256 (`operator_key_sha256`, written by
//! `keyfrag-server init`).

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keyfrag_proto::ErrorCode;

use crate::error::ApiError;
use crate::state::AppState;

/// Middleware in front of every admin route (unknown ones included): `Authorization: Bearer
/// <operator key>`, compared in constant time, or 401.
pub async fn require_operator_key(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let key = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match key {
        Some(k) if state.is_operator_key(k) => next.run(req).await,
        _ => ApiError::new(
            ErrorCode::Unauthorized,
            "missing or wrong operator key (admin routes take the key from keyfrag-server init)",
        )
        .into_response(),
    }
}
