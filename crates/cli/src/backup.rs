//! `keyfrag backup --out DIR` and `keyfrag restore --from DIR`: consistent backups of every
//! cell (docs/OPERATIONS.md "Backups").
//!
//! With n-of-n fragments one lost store loses every key, and a store restored alone from
//! before a refresh holds a stale epoch: its share no longer adds up with the others. So a
//! backup is one set — every cell's snapshot under one backup id, taken while refresh is
//! paused on every cell, with the same epochs for every key — and a restore puts the whole
//! set back, or nothing.
//!
//! Backup: pause refresh on every cell (a pause with a deadline, so a backup that dies never
//! holds refresh for long), fetch every cell's sealed snapshot, check the cells agree on every
//! token key and its epoch (retrying while a run already under way finishes), write the
//! snapshots and then `manifest.json`, resume refresh.
//!
//! Restore: check the manifest against the operator's cells, every snapshot's hash and header
//! (same backup id, the right cell and identity, the epochs the manifest lists), have every
//! cell verify its snapshot without changing anything (its own backup key, authentic, a store
//! it opens), and only then restore every cell.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyfrag_client::admin::{AdminClient, AdminFile};
use keyfrag_proto::backup::{
    Epochs, PauseRequest, PauseResponse, RestoreRequest, RestoreResponse, ResumeRequest,
    ResumeResponse, SnapshotHeader, SnapshotRequest, SnapshotResponse,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const MANIFEST_FILE: &str = "manifest.json";
const MANIFEST_FORMAT: u32 = 1;
/// How long the cells hold refresh paused if this backup never resumes it.
const PAUSE_SECS: u64 = 600;
/// Snapshot rounds while the cells disagree (a refresh run finishing its COMMIT/FINALIZE).
const ATTEMPTS: u32 = 3;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub backup_id: String,
    pub created_at: u64,
    pub cells: Vec<ManifestCell>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestCell {
    pub name: String,
    pub identity_fingerprint: String,
    /// The backup key the snapshot needs (derived from the master key then in use).
    pub key_id: String,
    /// File name inside the backup directory.
    pub snapshot: String,
    /// SHA-256 (hex) of the snapshot file.
    pub sha256: String,
    pub storage_version: u32,
    pub epochs: Epochs,
}

/// `--cluster`: the operator's `admin.toml`, or the directory holding it.
pub fn admin_path(cluster: &Path) -> PathBuf {
    if cluster.is_dir() {
        cluster.join(keyfrag_client::admin::ADMIN_FILE)
    } else {
        cluster.to_path_buf()
    }
}

/// Take a backup into `out` (created; must be empty if it exists). Returns the summary.
pub fn backup(admin: &AdminFile, out: &Path) -> Result<String, String> {
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(|e| format!("{}: {e}", out.display()))?
            .next()
            .is_some()
    {
        return Err(format!(
            "{} is not empty: back up into a new directory",
            out.display()
        ));
    }
    let clients = admin.clients().map_err(|e| e.message)?;
    let backup_id = keyfrag_core::random::uid_hex().map_err(|e| e.to_string())?;
    let mut paused = Vec::new();
    let result = (|| {
        for c in &clients {
            let _: PauseResponse = c
                .post_json(
                    "backup/pause",
                    &PauseRequest {
                        backup_id: backup_id.clone(),
                        ttl_secs: PAUSE_SECS,
                    },
                )
                .map_err(|e| format!("pausing refresh: {}", e.message))?;
            paused.push(c);
        }
        let snapshots = consistent_snapshots(&clients, &backup_id)?;
        write_backup(out, &backup_id, &snapshots)
    })();
    // Resume even after a failure; a cell that does not answer lifts its pause by itself.
    let warnings = resume_all(&paused, &backup_id);
    match result {
        Ok(summary) => Ok(format!("{summary}{warnings}")),
        Err(e) => Err(format!("{e}\n{warnings}").trim_end().to_string()),
    }
}

fn consistent_snapshots(
    clients: &[AdminClient],
    backup_id: &str,
) -> Result<Vec<SnapshotResponse>, String> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(u64::from(attempt)));
        }
        let mut snapshots = Vec::with_capacity(clients.len());
        for c in clients {
            let s: SnapshotResponse = c
                .post_json(
                    "backup/snapshot",
                    &SnapshotRequest {
                        backup_id: backup_id.to_string(),
                    },
                )
                .map_err(|e| format!("snapshot: {}", e.message))?;
            if s.header.cell != c.name() {
                return Err(format!(
                    "the cell at {}'s address calls itself {}: correct admin.toml",
                    c.name(),
                    s.header.cell
                ));
            }
            snapshots.push(s);
        }
        match disagreement(&snapshots) {
            None => return Ok(snapshots),
            Some(why) => last = why,
        }
    }
    Err(format!(
        "the cells' stores do not hold the same keys at the same epochs ({last}); a refresh \
         run or a key generation did not finish: run `keyfrag refresh --all` (it recovers \
         unfinished runs), then back up again"
    ))
}

/// The first key on which two cells' snapshots differ, described.
fn disagreement(snapshots: &[SnapshotResponse]) -> Option<String> {
    let first = &snapshots[0].header;
    for other in &snapshots[1..] {
        let o = &other.header;
        if o.epochs == first.epochs {
            continue;
        }
        for (token, keys) in first.epochs.iter().chain(o.epochs.iter()) {
            for uid in keys.keys() {
                let a = epoch_of(&first.epochs, token, uid);
                let b = epoch_of(&o.epochs, token, uid);
                if a != b {
                    return Some(format!(
                        "token {token} key {uid}: {} {}, {} {}",
                        first.cell,
                        show(a),
                        o.cell,
                        show(b)
                    ));
                }
            }
        }
    }
    None
}

fn epoch_of(epochs: &Epochs, token: &str, uid: &str) -> Option<u64> {
    epochs.get(token).and_then(|k| k.get(uid)).copied()
}

fn show(epoch: Option<u64>) -> String {
    epoch.map_or_else(|| "absent".into(), |e| format!("epoch {e}"))
}

fn write_backup(
    out: &Path,
    backup_id: &str,
    snapshots: &[SnapshotResponse],
) -> Result<String, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut cells = Vec::with_capacity(snapshots.len());
    for s in snapshots {
        let file = format!("{}.snapshot", s.header.cell);
        write_synced(&out.join(&file), &s.snapshot)?;
        cells.push(ManifestCell {
            name: s.header.cell.clone(),
            identity_fingerprint: s.header.identity_fingerprint.clone(),
            key_id: s.header.key_id.clone(),
            snapshot: file,
            sha256: hex::encode(Sha256::digest(&s.snapshot)),
            storage_version: s.header.storage_version,
            epochs: s.header.epochs.clone(),
        });
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        backup_id: backup_id.to_string(),
        created_at: snapshots
            .iter()
            .map(|s| s.header.created_at)
            .max()
            .unwrap_or(0),
        cells,
    };
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
    // The manifest last, by rename: a directory with a manifest is a complete backup.
    let tmp = out.join(format!("{MANIFEST_FILE}.tmp"));
    write_synced(&tmp, text.as_bytes())?;
    std::fs::rename(&tmp, out.join(MANIFEST_FILE)).map_err(|e| format!("manifest: {e}"))?;
    if let Ok(d) = std::fs::File::open(out) {
        let _ = d.sync_all();
    }
    let keys: usize = manifest.cells[0].epochs.values().map(BTreeMap::len).sum();
    Ok(format!(
        "backup {backup_id}: {} cells, {keys} token keys, written to {}\n",
        manifest.cells.len(),
        out.display()
    ))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    // Sealed, but only the operator has any business reading them.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Restore every cell of `admin` from the backup in `from`. Nothing changes unless every
/// check passes on every cell.
pub fn restore(admin: &AdminFile, from: &Path) -> Result<String, String> {
    let manifest_path = from.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(format!(
            "{}: manifest format {} (this build reads {MANIFEST_FORMAT})",
            manifest_path.display(),
            manifest.format
        ));
    }
    let snapshots = check_set(admin, &manifest, from)?;
    let clients = admin.clients().map_err(|e| e.message)?;
    // No refresh run may start or prepare while the stores are swapped; the pause is taken
    // under the restored backup's id and lifted at the end (or by its deadline).
    let mut paused = Vec::new();
    let result = (|| {
        for c in &clients {
            let _: PauseResponse = c
                .post_json(
                    "backup/pause",
                    &PauseRequest {
                        backup_id: manifest.backup_id.clone(),
                        ttl_secs: PAUSE_SECS,
                    },
                )
                .map_err(|e| format!("nothing restored: pausing refresh: {}", e.message))?;
            paused.push(c);
        }
        restore_all(&clients, &manifest.backup_id, snapshots)
    })();
    let warnings = resume_all(&paused, &manifest.backup_id);
    match result {
        Ok(summary) => Ok(format!("{summary}{warnings}")),
        Err(e) => Err(format!("{e}\n{warnings}").trim_end().to_string()),
    }
}

fn resume_all(paused: &[&AdminClient], backup_id: &str) -> String {
    let mut warnings = String::new();
    for c in paused {
        let resumed: Result<ResumeResponse, _> = c.post_json(
            "backup/resume",
            &ResumeRequest {
                backup_id: backup_id.to_string(),
            },
        );
        if let Err(e) = resumed {
            warnings.push_str(&format!(
                "warning: refresh not resumed on cell {} ({}); it resumes by itself within \
                 {PAUSE_SECS} s\n",
                c.name(),
                e.message
            ));
        }
    }
    warnings
}

fn restore_all(
    clients: &[AdminClient],
    backup_id: &str,
    snapshots: Vec<Vec<u8>>,
) -> Result<String, String> {
    // Every cell checks its snapshot (its key, authentic, a store it opens) before any
    // cell changes.
    for (c, snapshot) in clients.iter().zip(&snapshots) {
        let _: RestoreResponse = c
            .post_json(
                "backup/restore",
                &RestoreRequest {
                    backup_id: backup_id.to_string(),
                    dry_run: true,
                    snapshot: snapshot.clone(),
                },
            )
            .map_err(|e| format!("nothing restored: {}", e.message))?;
    }
    let mut done = Vec::new();
    for (c, snapshot) in clients.iter().zip(snapshots) {
        let r: Result<RestoreResponse, _> = c.post_json(
            "backup/restore",
            &RestoreRequest {
                backup_id: backup_id.to_string(),
                dry_run: false,
                snapshot,
            },
        );
        if let Err(e) = r {
            return Err(format!(
                "restoring cell {} failed after {} were restored ({}): fix the cell and run \
                 the same restore again (it is safe to repeat)",
                c.name(),
                if done.is_empty() {
                    "none".to_string()
                } else {
                    done.join(", ")
                },
                e.message
            ));
        }
        done.push(c.name().to_string());
    }
    Ok(format!(
        "restored {} cells ({}) from backup {backup_id}\n",
        done.len(),
        done.join(", ")
    ))
}

/// Check the set against the operator's cells before anything is sent: one manifest entry per
/// cell (by name), every snapshot file's hash, and every header (backup id, cell, identity,
/// key, epochs) as the manifest lists it. Returns the snapshots in admin-file order.
fn check_set(admin: &AdminFile, manifest: &Manifest, from: &Path) -> Result<Vec<Vec<u8>>, String> {
    let refuse = |why: String| Err(format!("refusing the backup in {}: {why}", from.display()));
    if manifest.cells.len() != admin.cells.len() {
        return refuse(format!(
            "it holds {} cells, the cluster has {}",
            manifest.cells.len(),
            admin.cells.len()
        ));
    }
    let first = &manifest.cells[0].epochs;
    let mut out = Vec::with_capacity(admin.cells.len());
    for cell in &admin.cells {
        let Some(entry) = manifest.cells.iter().find(|m| m.name == cell.name) else {
            return refuse(format!("no snapshot of cell {}", cell.name));
        };
        if &entry.epochs != first {
            return refuse(format!(
                "cell {}'s snapshot holds other epochs than cell {}'s (a mixed set)",
                entry.name, manifest.cells[0].name
            ));
        }
        if entry.snapshot.contains(['/', '\\']) || entry.snapshot.starts_with('.') {
            return refuse(format!("bad snapshot file name {:?}", entry.snapshot));
        }
        let path = from.join(&entry.snapshot);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if hex::encode(Sha256::digest(&bytes)) != entry.sha256 {
            return refuse(format!(
                "{} does not match the manifest's hash (corrupted, or from another backup)",
                path.display()
            ));
        }
        let header: SnapshotHeader = keyfrag_server::backup::read_header(&bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if header.backup_id != manifest.backup_id {
            return refuse(format!(
                "{} belongs to backup {}, the manifest to {} (a mixed set)",
                path.display(),
                header.backup_id,
                manifest.backup_id
            ));
        }
        if header.cell != entry.name
            || header.identity_fingerprint != entry.identity_fingerprint
            || header.key_id != entry.key_id
            || header.epochs != entry.epochs
        {
            return refuse(format!(
                "{} is not the snapshot the manifest lists for cell {} (it is cell {}'s)",
                path.display(),
                entry.name,
                header.cell
            ));
        }
        out.push(bytes);
    }
    Ok(out)
}
