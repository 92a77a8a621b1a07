//! Key fragments: `PUT /v1/keys/{uid}`, `DELETE /v1/keys/{uid}`, `GET /v1/keys`,
//! `GET /v1/keys/{uid}`, `POST /v1/keys/{uid}/rsa-partial`, `POST /v1/keys/lease` (renew or
//! make permanent), and the key pool: `GET /v1/keys/pool`, `POST /v1/keys/{uid}/claim`.
//!
//! Epochs: a key starts at epoch 1 and each refresh (`crate::refresh`) adds one. A cell
//! answers partials for its committed epoch and, until that refresh is finalized, for the
//! one before; never for a pending one.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// One cell's additive share of an RSA private exponent: d = Σ dᵢ over the integers.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct RsaShareWire {
    pub negative: bool,
    /// Big-endian magnitude, fixed width (`keyfrag_core::rsa_share::share_bytes`).
    #[serde(with = "crate::b64")]
    pub magnitude: Vec<u8>,
}

impl std::fmt::Debug for RsaShareWire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaShareWire([redacted])")
    }
}

/// `PUT /v1/keys/{uid}`: store this cell's share. Idempotent: the same uid with the same
/// content succeeds again; with different content it is a conflict.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PutRsaKeyRequest {
    #[serde(with = "crate::b64")]
    pub modulus: Vec<u8>,
    #[serde(with = "crate::b64")]
    pub public_exponent: Vec<u8>,
    pub share: RsaShareWire,
    /// Session keys: deleted by the cell unless renewed within this many seconds.
    pub lease_secs: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySummary {
    pub uid: String,
    pub kind: String,
    pub bits: u32,
    /// The committed epoch (what partials are computed with by default).
    pub epoch: u64,
    /// Seconds until a session key's lease expires; none for token keys.
    pub lease_remaining_secs: Option<u64>,
    /// The refresh session that produced `epoch`; none for a generated or imported share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_session: Option<String>,
    /// The epoch before, still served until its refresh is finalized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_epoch: Option<u64>,
    /// A refresh prepared on this cell and not yet committed or aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingEpoch>,
    /// The key waits in the token's pool (generated ahead of time, not yet handed to an
    /// application): no partials until it is claimed. Absent from older cells: false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pooled: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A pending epoch: stored, never served, until COMMIT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEpoch {
    pub epoch: u64,
    pub session: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeysResponse {
    pub keys: Vec<KeySummary>,
}

/// `POST /v1/keys/{uid}/rsa-partial`: x'^(2·dᵢ) mod N of a blinded input.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RsaPartialRequest {
    #[serde(with = "crate::b64")]
    pub input: Vec<u8>,
    /// The epoch the caller expects; none means the cell's current one.
    pub epoch: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RsaPartialResponse {
    #[serde(with = "crate::b64")]
    pub output: Vec<u8>,
    /// The epoch whose share computed `output`.
    pub epoch: u64,
    /// The cell's committed epoch, and the one before while it is still served: what a
    /// client may name next (it never combines partials of different epochs).
    #[serde(default)]
    pub current_epoch: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_epoch: Option<u64>,
    /// Time the cell spent in the exponentiation alone, as it measured it.
    pub compute_us: u64,
    /// The cell's wall time for the whole request, as it measured it: from the request
    /// entering its router (TLS and HTTP headers already parsed) to the response being ready
    /// (login check, share read and unsealing, compute, any waiting for a thread or a core).
    /// What benchmarks subtract from the end-to-end time. 0 from cells older than the field.
    #[serde(default)]
    pub handled_us: u64,
}

/// `POST /v1/keys/lease`: renew session keys' leases to `lease_secs`, or, with none, make
/// the keys permanent (a session key copied to the token).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LeaseRequest {
    pub uids: Vec<String>,
    pub lease_secs: Option<u64>,
}

/// One key waiting in a token's pool, with its public part: what the module needs to hand it
/// out as a freshly generated key (it checks the key with one private operation after the
/// claim, so a cell lying about the modulus is caught there).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PoolEntry {
    pub uid: String,
    pub bits: u32,
    #[serde(default, with = "crate::b64")]
    pub modulus: Vec<u8>,
    #[serde(default, with = "crate::b64")]
    pub public_exponent: Vec<u8>,
}

/// `GET /v1/keys/pool`: the keys of the caller's token that wait in its pool, in uid order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PoolList {
    pub keys: Vec<PoolEntry>,
}

/// `POST /v1/keys/{uid}/claim`: take a key out of the pool (→ `Ack`). Atomic per cell: of two
/// claims of one key, one succeeds and the other gets 409 `conflict`; an unknown key is 404.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClaimRequest {
    /// Claim it as a session key: deleted unless renewed within this many seconds. None: a
    /// token key.
    #[serde(default)]
    pub lease_secs: Option<u64>,
}
