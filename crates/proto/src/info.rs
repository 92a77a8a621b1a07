//! `GET /v1/info`: who the cell is and which versions it speaks.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InfoResponse {
    pub cell: String,
    pub software: String,
    pub wire_version: u32,
    pub storage_version: u32,
    /// Hex of `PartyCard::to_bytes()` of the cell's relay card: what a customer party seals
    /// to. Trusted because it arrives over the pinned TLS connection; absent from older cells.
    #[serde(default)]
    pub relay_card: Option<String>,
}
