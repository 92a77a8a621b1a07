//! `GET /v1/info`: who the cell is and which versions it speaks.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InfoResponse {
    pub cell: String,
    pub software: String,
    pub wire_version: u32,
    pub storage_version: u32,
}
