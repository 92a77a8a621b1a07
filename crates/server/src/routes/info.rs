//! `GET /v1/info`.

use axum::Json;
use axum::extract::State;
use keyfrag_proto::info::InfoResponse;

use crate::state::AppState;

pub async fn info(State(state): State<AppState>) -> Json<InfoResponse> {
    Json(InfoResponse {
        cell: state.name().to_string(),
        software: format!("keyfrag-server {}", env!("CARGO_PKG_VERSION")),
        wire_version: keyfrag_proto::WIRE_VERSION,
        storage_version: state.store().storage_version(),
        relay_card: state
            .relay()
            .and_then(|r| r.own_card().ok())
            .map(|card| hex::encode(card.to_bytes())),
    })
}
