//! `GET /healthz` and `GET /readyz`: for load balancers and orchestrators, so they need no
//! access key and reveal nothing but "up" and "ready".

use axum::extract::State;
use axum::http::StatusCode;

use crate::state::AppState;

/// The process is up and serving TLS.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready for requests: the store answers a read (the master key and TLS config were loaded
/// before the listener opened, or the cell would not be serving), and no restore is swapping
/// the database.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.restoring() {
        return (StatusCode::SERVICE_UNAVAILABLE, "restoring\n");
    }
    match state.db(|s| s.storage_ping()).await {
        Ok(()) => (StatusCode::OK, "ready\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n"),
    }
}
