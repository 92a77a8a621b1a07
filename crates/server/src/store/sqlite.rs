//! The embedded SQLite store: one file, WAL mode, `synchronous=FULL` (an acknowledged write
//! survives power loss), every write in a transaction.
//!
//! One connection behind a mutex is plenty for a cell's request rate; the HTTP layer already
//! runs every call on the blocking pool so the mutex never blocks the async runtime.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::{Store, StoreError, StoreResult};

/// Version of the schema below; `/v1/info` reports it. A database of another version is
/// refused rather than guessed at.
pub const STORAGE_VERSION: u32 = 1;

const SCHEMA: &str = "
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE tokens (
    token_id      TEXT PRIMARY KEY,
    initialized   INTEGER NOT NULL DEFAULT 0,
    label         TEXT NOT NULL DEFAULT '',
    so_verifier   TEXT,
    so_failures   INTEGER NOT NULL DEFAULT 0,
    user_verifier TEXT,
    user_failures INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE logins (
    token_id   TEXT NOT NULL,
    login_hash BLOB NOT NULL,
    kind       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (token_id, login_hash)
);
CREATE TABLE objects (
    token_id TEXT NOT NULL,
    id       TEXT NOT NULL,
    key_uid  TEXT,
    attrs    TEXT NOT NULL,
    PRIMARY KEY (token_id, id)
);
CREATE TABLE staged_tx (
    token_id     TEXT NOT NULL,
    txid         TEXT NOT NULL,
    content_hash BLOB NOT NULL,
    content      TEXT,
    committed    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (token_id, txid)
);
CREATE TABLE keys (
    token_id        TEXT NOT NULL,
    uid             TEXT NOT NULL,
    kind            TEXT NOT NULL,
    bits            INTEGER NOT NULL,
    modulus         BLOB NOT NULL,
    public_exponent BLOB NOT NULL,
    epoch           INTEGER NOT NULL,
    format          INTEGER NOT NULL,
    sealed_share    BLOB NOT NULL,
    lease_secs      INTEGER,
    expires_at      INTEGER,
    PRIMARY KEY (token_id, uid)
);
CREATE INDEX keys_expiry ON keys (expires_at) WHERE expires_at IS NOT NULL;
";

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and check its schema version.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let conn = Connection::open(path).map_err(backend)?;
        // secure_delete: freed pages (old PIN verifiers, login hashes, sealed shares) are
        // overwritten instead of lingering in the file.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA secure_delete = ON;
             PRAGMA busy_timeout = 5000;",
        )
        .map_err(backend)?;
        let mut store = SqliteStore {
            conn: Mutex::new(conn),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> StoreResult<()> {
        let conn = self.conn.get_mut().map_err(|_| poisoned())?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let exists: bool = tx
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(backend)?
            > 0;
        if exists {
            let v: Option<u32> = tx
                .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            if v != Some(STORAGE_VERSION) {
                return Err(StoreError::Backend(format!(
                    "database schema version {v:?}, this build supports {STORAGE_VERSION}"
                )));
            }
        } else {
            tx.execute_batch(SCHEMA).map_err(backend)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [STORAGE_VERSION],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)
    }

    fn lock(&self) -> StoreResult<MutexGuard<'_, Connection>> {
        self.conn.lock().map_err(|_| poisoned())
    }

    /// Run `f` inside one IMMEDIATE transaction (the write lock is taken up front, so a
    /// read-then-write never fails half-way on a busy database) and commit if it succeeds.
    pub(super) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let out = f(&tx)?;
        tx.commit().map_err(backend)?;
        Ok(out)
    }

    /// Run read-only queries; a deferred transaction gives them one consistent snapshot.
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(backend)?;
        f(&tx)
    }
}

impl Store for SqliteStore {
    fn storage_version(&self) -> u32 {
        STORAGE_VERSION
    }
}

pub(super) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn poisoned() -> StoreError {
    StoreError::Backend("database mutex poisoned by an earlier panic".into())
}
