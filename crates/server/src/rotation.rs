//! Master-key rotation without downtime (`POST /v1/admin/master-key/rotate`,
//! `keyfrag cell rotate-master-key`): a new key becomes current (new rows are sealed under it)
//! while every older key still opens; every share row is then re-sealed under it, one batch
//! per transaction; when none is left, the key files are renamed (sealing.rs). A crash at any
//! point leaves every row readable with the key files on disk, and running the rotation again
//! resumes it with the same new key.

use crate::sealing::{MasterKey, SHARE_FORMAT};
use crate::store::Store;

/// Rows re-sealed per transaction.
pub const BATCH: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// The new key's id, hex.
    pub key_id: String,
    pub resealed: usize,
    /// False when stopped after `max_batches` (tests: a crash between batches).
    pub finished: bool,
}

/// Run (or resume) a rotation. Blocking: call it on the blocking pool.
pub fn rotate(
    store: &dyn Store,
    master: &MasterKey,
    batch: usize,
    max_batches: Option<usize>,
) -> Result<Rotation, String> {
    let id = master.begin_rotation()?;
    let mut resealed = 0;
    let mut batches = 0;
    loop {
        if max_batches.is_some_and(|m| batches >= m) {
            return Ok(Rotation {
                key_id: hex::encode(id),
                resealed,
                finished: false,
            });
        }
        let rows = store
            .shares_to_reseal(&id, batch.max(1))
            .map_err(|e| e.to_string())?;
        if rows.is_empty() {
            break;
        }
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let share = master
                .open_share(&row.token, &row.uid, row.epoch, row.format, &row.sealed)
                .map_err(|e| format!("key {} epoch {}: {e}", row.uid, row.epoch))?;
            let sealed = master.seal_share(&row.token, &row.uid, row.epoch, &share)?;
            out.push((row, SHARE_FORMAT, sealed));
        }
        let changed = store.replace_sealed(&out).map_err(|e| e.to_string())?;
        // A batch where nothing changed means rows keep changing under us: retry, bounded by
        // what the next query returns (rows sealed meanwhile are already under the new key).
        resealed += changed;
        batches += 1;
    }
    master.finish_rotation()?;
    tracing::info!(target: "audit", key_id = %hex::encode(id), resealed, "master key rotated");
    Ok(Rotation {
        key_id: hex::encode(id),
        resealed,
        finished: true,
    })
}
