//! PRF keys (issue 9, docs/DPRF.md): `POST /v1/keys/{uid}/prf-create`,
//! `POST /v1/keys/{uid}/prf-commitments`, `POST /v1/keys/{uid}/prf-evaluate`. Deleting,
//! leases and listing are the key routes of `crate::keys` (listing shows kind "prf").
//!
//! Creation has two steps: every cell samples its share kᵢ alone and answers Kᵢ = kᵢ·G; the
//! client then hands every cell the whole list, in one order, and from then on each cell
//! reports that list with each evaluation, so a cell whose share changed is caught by the
//! others' lists. A key is evaluated only once its list is fixed.

use serde::{Deserialize, Serialize};

/// Kind of a PRF key in key listings.
pub const KIND_PRF: &str = "prf";

/// Most cells a PRF key may span.
pub const MAX_PRF_CELLS: usize = 64;

/// `prf-create`: sample this cell's share. Idempotent: a PRF key with this uid whose list is
/// not yet fixed answers its commitment again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrfCreateRequest {
    /// Session keys: deleted by the cell unless renewed within this many seconds.
    pub lease_secs: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrfCreateResponse {
    /// Kᵢ = kᵢ·G, 32 bytes.
    #[serde(with = "crate::b64")]
    pub commitment: Vec<u8>,
    pub epoch: u64,
}

/// `prf-commitments`: fix the key's list of commitments; the cell's own must be in it once.
/// The same list again succeeds; a different one is a conflict.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrfCommitmentsRequest {
    #[serde(with = "crate::b64::list")]
    pub commitments: Vec<Vec<u8>>,
}

/// The key as this cell holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrfKeyResponse {
    /// `keyfrag_core::dprf::commitments_hash` of the list, hex.
    pub commitments_hash: String,
    pub epoch: u64,
}

/// `prf-evaluate`: Zᵢ = kᵢ·B for a logged-in user, with a DLEQ proof against Kᵢ.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrfEvaluateRequest {
    /// B, a canonical non-identity ristretto255 element (32 bytes).
    #[serde(with = "crate::b64")]
    pub blinded: Vec<u8>,
    /// The epoch the caller expects; none means the cell's current one.
    pub epoch: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrfEvaluateResponse {
    #[serde(with = "crate::b64")]
    pub evaluated: Vec<u8>,
    /// RFC 9497 proof c ‖ s, 64 bytes.
    #[serde(with = "crate::b64")]
    pub proof: Vec<u8>,
    /// This cell's position in `commitments`.
    pub index: u32,
    /// The key's list at `epoch`, as fixed at creation (or by the refresh that made `epoch`).
    #[serde(with = "crate::b64::list")]
    pub commitments: Vec<Vec<u8>>,
    pub epoch: u64,
    pub current_epoch: u64,
    pub previous_epoch: Option<u64>,
}
