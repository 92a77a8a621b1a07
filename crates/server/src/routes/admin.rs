//! The operator's routes, all under `/v1/admin` and all behind
//! `admin_auth::require_operator_key` (never behind a token's access key). Route families of
//! their own (tokens, access keys, backups) add their routes here.

use axum::Router;
use axum::middleware;
use axum::routing::get;

use crate::admin_auth::require_operator_key;
use crate::state::AppState;

pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/admin/info", get(super::info::info))
        .layer(middleware::from_fn_with_state(state, require_operator_key))
}
