//! `POST /v1/admin/backup/{pause,resume,snapshot,restore}` (operator key; docs/OPERATIONS.md).
//!
//! A snapshot is only taken under its own backup's pause, so every cell's snapshot of one
//! backup sees no refresh run start or prepare. A restore checks everything before it changes
//! anything: the snapshot is of this backup, of this cell (name, identity and backup key),
//! authentic, and a store this build opens whose epochs match its header.

use std::path::Path;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use axum::{Json, Router};
use keyfrag_proto::backup::{
    MAX_RESTORE_BODY_BYTES, PauseRequest, PauseResponse, RestoreRequest, RestoreResponse,
    ResumeRequest, ResumeResponse, SnapshotHeader, SnapshotRequest, SnapshotResponse,
};
use sha2::{Digest, Sha256};

use super::{ApiJson, check_uid, now_secs};
use crate::backup::{BackupKey, SNAPSHOT_FORMAT, read_header};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{STORAGE_VERSION, inspect_snapshot};

/// The backup routes; a restore carries a whole snapshot, far over the JSON limit, so its
/// own body limit overrides the router-wide one.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/backup/pause", post(pause))
        .route("/v1/admin/backup/resume", post(resume))
        .route("/v1/admin/backup/snapshot", post(snapshot))
        .route(
            "/v1/admin/backup/restore",
            post(restore).layer(DefaultBodyLimit::max(MAX_RESTORE_BODY_BYTES)),
        )
}

/// Longest pause a backup may ask for.
const MAX_PAUSE_SECS: u64 = 3600;

pub async fn pause(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<PauseRequest>,
) -> ApiResult<Json<PauseResponse>> {
    check_uid("backup id", &req.backup_id)?;
    let now = now_secs();
    let until = now + req.ttl_secs.clamp(1, MAX_PAUSE_SECS);
    state
        .maintenance()
        .pause(&req.backup_id, now, until)
        .map_err(|other| {
            ApiError::conflict(format!(
                "backup {other} holds refresh paused on this cell; wait for it to end"
            ))
        })?;
    tracing::info!(target: "audit", backup = %req.backup_id, until, "refresh paused for a backup");
    Ok(Json(PauseResponse {
        paused_until: until,
    }))
}

pub async fn resume(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ResumeRequest>,
) -> ApiResult<Json<ResumeResponse>> {
    check_uid("backup id", &req.backup_id)?;
    let resumed = state.maintenance().resume(&req.backup_id, now_secs());
    if resumed {
        tracing::info!(target: "audit", backup = %req.backup_id, "refresh resumed");
    }
    Ok(Json(ResumeResponse { resumed }))
}

fn identity_fingerprint(state: &AppState) -> String {
    state
        .relay()
        .map(|r| hex::encode(Sha256::digest(r.keys().identity_public())))
        .unwrap_or_default()
}

pub async fn snapshot(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SnapshotRequest>,
) -> ApiResult<Json<SnapshotResponse>> {
    check_uid("backup id", &req.backup_id)?;
    if !state.maintenance().paused_by(&req.backup_id, now_secs()) {
        return Err(ApiError::conflict(format!(
            "refresh is not paused for backup {} on this cell (pause first; a pause lifts by \
             itself after its ttl)",
            req.backup_id
        )));
    }
    let st = state.clone();
    tokio::task::spawn_blocking(move || take_snapshot(&st, &req.backup_id))
        .await
        .map_err(ApiError::internal)?
        .map(Json)
}

fn take_snapshot(state: &AppState, backup_id: &str) -> ApiResult<SnapshotResponse> {
    let store = state.store();
    let scratch = store.scratch_path(&format!("snapshot-{backup_id}"));
    let _ = std::fs::remove_file(&scratch);
    let result = (|| {
        store.snapshot_to(&scratch).map_err(ApiError::from)?;
        let (storage_version, epochs) =
            inspect_snapshot(&scratch, STORAGE_VERSION).map_err(ApiError::from)?;
        let db = zeroize::Zeroizing::new(std::fs::read(&scratch).map_err(ApiError::internal)?);
        let key = BackupKey::derive(state.master_key());
        let header = SnapshotHeader {
            format: SNAPSHOT_FORMAT,
            backup_id: backup_id.to_string(),
            cell: state.name().to_string(),
            identity_fingerprint: identity_fingerprint(state),
            key_id: key.key_id(),
            storage_version,
            created_at: now_secs(),
            epochs,
        };
        let snapshot = key.seal(&header, &db).map_err(ApiError::internal)?;
        Ok(SnapshotResponse { header, snapshot })
    })();
    let _ = std::fs::remove_file(&scratch);
    if result.is_ok() {
        tracing::info!(target: "audit", backup = %backup_id, "snapshot taken");
    }
    result
}

pub async fn restore(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RestoreRequest>,
) -> ApiResult<Json<RestoreResponse>> {
    check_uid("backup id", &req.backup_id)?;
    let st = state.clone();
    let answer = tokio::task::spawn_blocking(move || restore_blocking(&st, &req))
        .await
        .map_err(ApiError::internal)??;
    if answer.restored {
        // The access keys issued and revoked are the backup's now.
        state.reload_access_keys().await?;
    }
    Ok(Json(answer))
}

fn restore_blocking(state: &AppState, req: &RestoreRequest) -> ApiResult<RestoreResponse> {
    let header = read_header(&req.snapshot).map_err(ApiError::bad_request)?;
    if header.backup_id != req.backup_id {
        return Err(ApiError::bad_request(format!(
            "the snapshot belongs to backup {}, not {}",
            header.backup_id, req.backup_id
        )));
    }
    if header.cell != state.name() {
        return Err(ApiError::conflict(format!(
            "the snapshot is of cell {}, this is cell {}",
            header.cell,
            state.name()
        )));
    }
    let own = identity_fingerprint(state);
    if header.identity_fingerprint != own {
        return Err(ApiError::conflict(format!(
            "the snapshot is of a cell with identity {}, this cell's is {}",
            or_none(&header.identity_fingerprint),
            or_none(&own)
        )));
    }
    // The master key of the snapshot's time: the current one, or a retired one the operator
    // put back beside it (docs/OPERATIONS.md, master-key rotation).
    let Some(key) = BackupKey::derive_all(state.master_key())
        .into_iter()
        .find(|k| k.key_id() == header.key_id)
    else {
        return Err(ApiError::conflict(format!(
            "the snapshot is sealed under backup key {}, which none of this cell's master keys \
             gives (current: {}): put the master key in use when the backup was taken back \
             beside master.key as master.key.retired-<id>, restart the cell, and restore again",
            header.key_id,
            BackupKey::derive(state.master_key()).key_id()
        )));
    };
    let db = key.open(&req.snapshot).map_err(ApiError::bad_request)?;
    let scratch = state
        .store()
        .scratch_path(&format!("restore-{}", req.backup_id));
    let checked = write_private(&scratch, &db).and_then(|()| {
        let (version, epochs) = inspect_snapshot(&scratch, STORAGE_VERSION)
            .map_err(|e| ApiError::bad_request(format!("the snapshot's database: {e}")))?;
        if version != header.storage_version || epochs != header.epochs {
            return Err(ApiError::bad_request(
                "the snapshot's database does not match its header",
            ));
        }
        Ok(())
    });
    drop(db);
    if let Err(e) = checked {
        let _ = std::fs::remove_file(&scratch);
        return Err(e);
    }
    if req.dry_run {
        let _ = std::fs::remove_file(&scratch);
        return Ok(RestoreResponse {
            header,
            restored: false,
        });
    }
    if !state.maintenance().begin_restore() {
        let _ = std::fs::remove_file(&scratch);
        return Err(ApiError::conflict(
            "a restore is already running on this cell",
        ));
    }
    let swapped = state.store().replace_with(&scratch);
    state.maintenance().end_restore();
    if let Err(e) = swapped {
        let _ = std::fs::remove_file(&scratch);
        return Err(ApiError::from(e));
    }
    tracing::warn!(target: "audit", backup = %req.backup_id, "store restored from a backup");
    Ok(RestoreResponse {
        header,
        restored: true,
    })
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "(none)" } else { s }
}

/// The plaintext database, readable by the cell's user only (it holds sealed shares and the
/// PIN verifiers).
fn write_private(path: &Path, bytes: &[u8]) -> ApiResult<()> {
    use std::io::Write;
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(ApiError::internal)?;
    f.write_all(bytes).map_err(ApiError::internal)?;
    f.sync_all().map_err(ApiError::internal)
}
