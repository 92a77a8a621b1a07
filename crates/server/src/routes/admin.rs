//! The operator's routes, all under `/v1/admin` and all behind
//! `admin_auth::require_operator_key` (never behind a token's access key). Route families of
//! their own (tokens, access keys, backups) add their routes here.

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};

use super::admin_tokens;
use crate::admin_auth::require_operator_key;
use crate::state::AppState;

pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/admin/info", get(super::info::info))
        .route("/v1/admin/tokens", post(admin_tokens::create_token))
        .route("/v1/admin/tokens/remove", post(admin_tokens::remove_token))
        .route(
            "/v1/admin/tokens/{label}/customer-card",
            post(super::admin_customer::pin).get(super::admin_customer::get),
        )
        .route(
            "/v1/admin/access-keys",
            post(admin_tokens::issue).get(admin_tokens::list),
        )
        .route(
            "/v1/admin/access-keys/remove",
            post(admin_tokens::remove_key),
        )
        .route("/v1/admin/access-keys/revoke", post(admin_tokens::revoke))
        .route(
            "/v1/admin/master-key/rotate",
            post(super::admin_master_key::rotate_master_key),
        )
        .merge(super::backup::router())
        .layer(middleware::from_fn_with_state(state, require_operator_key))
}
