//! `/v1/admin/backup/...` (operator key): pause refresh, take an encrypted snapshot of the
//! cell's store, restore one. A snapshot is opaque to the operator: sealed under the cell's
//! own backup key, its header (authenticated, readable) names the backup, the cell and the
//! epochs it holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Largest snapshot a restore accepts in one request (base64 in JSON).
pub const MAX_RESTORE_BODY_BYTES: usize = 512 << 20;

/// Token id → key uid → committed epoch, of the token keys (session keys are never backed up
/// meaningfully: their leases run out).
pub type Epochs = BTreeMap<String, BTreeMap<String, u64>>;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    pub backup_id: String,
    /// The pause lifts by itself after this long, so a backup that died never holds refresh.
    pub ttl_secs: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseResponse {
    /// Unix seconds.
    pub paused_until: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeRequest {
    pub backup_id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeResponse {
    /// False when another backup holds the pause (it stays).
    pub resumed: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRequest {
    pub backup_id: String,
}

/// The readable, authenticated part of a snapshot (also returned beside it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotHeader {
    pub format: u32,
    pub backup_id: String,
    pub cell: String,
    /// SHA-256 (hex) of the cell's Ed25519 identity key, as on its card; "" without one.
    pub identity_fingerprint: String,
    /// Identifies the backup key (not secret): a restore under another master key is named
    /// as such instead of failing as a corrupted file.
    pub key_id: String,
    pub storage_version: u32,
    pub created_at: u64,
    pub epochs: Epochs,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotResponse {
    pub header: SnapshotHeader,
    /// The whole snapshot file (header and sealed database).
    #[serde(with = "crate::b64")]
    pub snapshot: Vec<u8>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    pub backup_id: String,
    /// Check everything (it is this cell's, under its key, intact, a store it can open) but
    /// change nothing.
    pub dry_run: bool,
    #[serde(with = "crate::b64")]
    pub snapshot: Vec<u8>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreResponse {
    pub header: SnapshotHeader,
    pub restored: bool,
}
