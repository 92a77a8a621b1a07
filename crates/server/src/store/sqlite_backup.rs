//! Backups of the SQLite store: a consistent copy by `VACUUM INTO` (a snapshot of one read
//! transaction, written as a compact new database), and a restore that swaps the database file
//! under the connection lock — requests wait for the swap, none sees half of it.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::sqlite::{SqliteStore, backend};
use super::{BackupStore, StoreError, StoreResult};
use keyfrag_proto::backup::Epochs;

impl BackupStore for SqliteStore {
    fn scratch_path(&self, tag: &str) -> PathBuf {
        with_suffix(self.path(), &format!(".{tag}.tmp"))
    }

    fn snapshot_to(&self, path: &Path) -> StoreResult<()> {
        let conn = self.lock()?;
        let target = path
            .to_str()
            .ok_or_else(|| StoreError::Backend("snapshot path is not UTF-8".into()))?;
        conn.execute("VACUUM INTO ?1", [target]).map_err(backend)?;
        Ok(())
    }

    fn replace_with(&self, snapshot: &Path) -> StoreResult<()> {
        let mut conn = self.lock()?;
        let db = self.path().to_path_buf();
        // Fold the WAL into the file and close the connection (the last close removes the
        // -wal and -shm files), so nothing of the old database outlives the swap.
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(backend)?;
        let placeholder = Connection::open_in_memory().map_err(backend)?;
        let old = std::mem::replace(&mut *conn, placeholder);
        old.close().map_err(|(_, e)| backend(e))?;
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(with_suffix(&db, suffix));
        }
        std::fs::rename(snapshot, &db)
            .map_err(|e| StoreError::Backend(format!("swapping the database file: {e}")))?;
        if let Some(dir) = db.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        // Opened (and migrated forward) exactly as at start-up.
        *conn = SqliteStore::open(&db)?.into_connection()?;
        Ok(())
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Open a snapshot database read-only and check it: SQLite's integrity check, a schema version
/// this build can open, and the committed epoch of every token key.
pub fn inspect_snapshot(path: &Path, newest: u32) -> StoreResult<(u32, Epochs)> {
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(backend)?;
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(backend)?;
    if check != "ok" {
        return Err(StoreError::Backend(format!("integrity check: {check}")));
    }
    let version: u32 = conn
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .map_err(backend)?;
    if version == 0 || version > newest {
        return Err(StoreError::Backend(format!(
            "database schema version {version}, this build supports 1 to {newest}"
        )));
    }
    let mut stmt = conn
        .prepare("SELECT token_id, uid, epoch FROM keys WHERE lease_secs IS NULL")
        .map_err(backend)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(backend)?;
    let mut epochs = Epochs::new();
    for row in rows {
        let (token, uid, epoch) = row.map_err(backend)?;
        epochs.entry(token).or_default().insert(uid, epoch as u64);
    }
    Ok((version, epochs))
}
