//! Proactive refresh of a key's fragments (DESIGN.md "Refresh", docs/REFRESH.md), driven by a
//! client that only relays: `POST /v1/keys/{uid}/refresh/{deal,prepare,commit,finalize,abort}`,
//! JSON, relay envelopes as base64url strings. The access key selects the token; no login is
//! needed (the check partials are on a hashed input nobody chooses).
//!
//! Every step is idempotent: the same request again returns the same answer (or succeeds
//! without change), so a client may retry any step after a cut connection.

use serde::{Deserialize, Serialize};

/// `POST .../refresh/deal`: start (or repeat) this cell's deal of zero-sum deltas for the run
/// `session` that takes the key from committed epoch `epoch` to `epoch + 1`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DealRequest {
    /// Fresh random id of the run: 32 lowercase hex digits.
    pub session: String,
    /// The committed epoch the run leaves.
    pub epoch: u64,
    /// Cell names in party order; every cell holding the key, each exactly once.
    pub parties: Vec<String>,
}

/// The deal: the key's public part as this cell holds it (the client checks every cell
/// agrees) and one sealed delta for every peer. A PRF key ("prf") has no shared public
/// part: its modulus and exponent are empty, and its checks are `dprf::refresh::PrfCheck`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DealResponse {
    /// The key's kind ("rsa" when absent: cells before PRF keys).
    #[serde(default = "rsa_kind")]
    pub kind: String,
    #[serde(with = "crate::b64")]
    pub modulus: Vec<u8>,
    #[serde(with = "crate::b64")]
    pub public_exponent: Vec<u8>,
    #[serde(with = "crate::b64::list")]
    pub envelopes: Vec<Vec<u8>>,
}

fn rsa_kind() -> String {
    "rsa".into()
}

/// `POST .../refresh/prepare`: the deltas every peer dealt to this cell. The cell stores its
/// pending share and answers with its signed check.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrepareRequest {
    pub session: String,
    #[serde(with = "crate::b64::list")]
    pub envelopes: Vec<Vec<u8>>,
}

/// A cell's check: a broadcast envelope, signed by the cell, holding its partials on the
/// run's check input under its committed and its pending share
/// (`keyfrag_core::refresh::CheckPartials`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckResponse {
    #[serde(with = "crate::b64")]
    pub check: Vec<u8>,
}

/// `POST .../refresh/check`: this cell's check again (recovery of a run another client
/// started). Refused once the run is finalized or aborted here.
/// `POST .../refresh/finalize`: drop the previous epoch's share (sent only once every cell
/// acknowledged COMMIT).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    pub session: String,
}

/// `POST .../refresh/commit`: every cell's check, in party order. A cell commits only if
/// each is validly signed by its cell for this run and Π old = Π pending.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    pub session: String,
    #[serde(with = "crate::b64::list")]
    pub checks: Vec<Vec<u8>>,
}

/// The cell's committed epoch after a commit or finalize.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochResponse {
    pub epoch: u64,
}

/// `POST .../refresh/abort`: forget run `session` (leaving `epoch`) on this cell and refuse
/// it from now on. Refused (conflict) once this cell committed it: a run that any cell
/// committed rolls forward. With `only_if_absent`, refused too while this cell holds the
/// run's pending share (recovery first fences the cells that never prepared).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbortRequest {
    pub session: String,
    pub epoch: u64,
    #[serde(default)]
    pub only_if_absent: bool,
}
