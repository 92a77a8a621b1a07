//! Token object metadata: `GET /v1/objects`, `POST /v1/objects/stage`,
//! `POST /v1/objects/commit`, `POST /v1/objects/abort`.
//!
//! Metadata is public (attributes, public keys, certificates, data objects). Writes are
//! two-phase under a transaction id: stage on every cell, then commit on every cell; a staged
//! transaction that any cell committed is rolled forward, never back.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One stored object: attribute type numbers (PKCS#11 values) to raw attribute bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// 32 hex digits, random, never reused.
    pub id: String,
    /// Key material this object references (32 hex digits), if any.
    pub key_uid: Option<String>,
    pub attrs: Vec<Attr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attr {
    #[serde(rename = "t")]
    pub kind: u64,
    #[serde(rename = "v", with = "crate::b64")]
    pub value: Vec<u8>,
}

impl ObjectRecord {
    pub fn attr(&self, kind: u64) -> Option<&[u8]> {
        self.attrs
            .iter()
            .find(|a| a.kind == kind)
            .map(|a| a.value.as_slice())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObjectsResponse {
    pub metadata_hash: String,
    pub objects: Vec<ObjectRecord>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageRequest {
    /// 32 hex digits chosen by the client; staging the same txid again is idempotent.
    pub txid: String,
    pub puts: Vec<ObjectRecord>,
    pub deletes: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TxRequest {
    pub txid: String,
}

/// `GET /v1/objects/pending`: transactions this cell staged and has neither committed nor
/// aborted. After a crash between commits, some cells may have committed one of them: the
/// client asks every cell (`POST /v1/objects/status`) and rolls it forward.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingResponse {
    pub staged: Vec<String>,
}

/// What one cell knows of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    /// Never staged here, or aborted.
    Unknown,
    Staged,
    Committed,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TxStatusResponse {
    pub status: TxStatus,
    /// Staged on this cell so long ago that this cell no longer commits it: when every cell
    /// says so (or never saw it) and none committed it, a client may abort it everywhere.
    #[serde(default)]
    pub abandoned: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommitResponse {
    pub metadata_hash: String,
}

/// SHA-256 over the token label and every object, in id order, in a canonical encoding.
/// Cells report it; the client recomputes it over what it received and compares all cells.
pub fn metadata_hash(label: &str, objects: &[ObjectRecord]) -> String {
    let mut sorted: Vec<&ObjectRecord> = objects.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let mut h = Sha256::new();
    put(&mut h, b"keyfrag-metadata-v1");
    put(&mut h, label.as_bytes());
    for o in sorted {
        put(&mut h, o.id.as_bytes());
        put(&mut h, o.key_uid.as_deref().unwrap_or("").as_bytes());
        let mut attrs: Vec<&Attr> = o.attrs.iter().collect();
        attrs.sort_by_key(|a| a.kind);
        h.update((attrs.len() as u64).to_be_bytes());
        for a in attrs {
            h.update(a.kind.to_be_bytes());
            put(&mut h, &a.value);
        }
    }
    hex::encode(h.finalize())
}

fn put(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}
