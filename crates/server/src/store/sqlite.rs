//! The embedded SQLite store: one file, WAL mode, `synchronous=FULL` (an acknowledged write
//! survives power loss), every write in a transaction.
//!
//! One connection behind a mutex is plenty for a cell's request rate; the HTTP layer already
//! runs every call on the blocking pool so the mutex never blocks the async runtime.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::{Store, StoreError, StoreResult};

/// Version of the schema below; `/v1/info` reports it. An older database is migrated
/// forward on open (`V1_TO_V2`); a newer one is refused rather than guessed at.
pub const STORAGE_VERSION: u32 = 6;

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
    lease_secs      INTEGER,
    expires_at      INTEGER,
    PRIMARY KEY (token_id, uid)
);
CREATE INDEX keys_expiry ON keys (expires_at) WHERE expires_at IS NOT NULL;
";

/// Version 2: shares move out of `keys` into rows of their own, one per epoch, so a key can
/// hold its committed share, the previous one (until a refresh is finalized) and a pending
/// one; a share made by a refresh keeps its run's session and parties and this cell's signed
/// check (public), which recovery may ask for again. `refresh_fences` lists refresh runs
/// aborted on this cell, which it never prepares. `keys.epoch` is the committed epoch.
const SHARES_SCHEMA: &str = "
CREATE TABLE shares (
    token_id     TEXT NOT NULL,
    uid          TEXT NOT NULL,
    epoch        INTEGER NOT NULL,
    pending      INTEGER NOT NULL DEFAULT 0,
    session      TEXT,
    parties      TEXT,
    check_env    BLOB,
    format       INTEGER NOT NULL,
    sealed_share BLOB NOT NULL,
    PRIMARY KEY (token_id, uid, epoch)
);
CREATE TABLE refresh_fences (
    token_id TEXT NOT NULL,
    uid      TEXT NOT NULL,
    session  TEXT NOT NULL,
    epoch    INTEGER NOT NULL,
    PRIMARY KEY (token_id, uid, session)
);
";

/// Version 1 → 2: every key's share becomes its committed share row at the key's epoch
/// (same ciphertext: the sealing AAD binds token, uid, epoch and format, none of which
/// change), then the share columns leave `keys`.
const V1_TO_V2: &str = "
INSERT INTO shares (token_id, uid, epoch, pending, session, format, sealed_share)
    SELECT token_id, uid, epoch, 0, NULL, format, sealed_share FROM keys;
ALTER TABLE keys DROP COLUMN sealed_share;
ALTER TABLE keys DROP COLUMN format;
";

pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// The database file (a restore swaps it).
    path: PathBuf,
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
            path: path.to_path_buf(),
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
            match v {
                Some(STORAGE_VERSION) => {}
                // Numbered steps, each taking the schema from version n - 1 to n.
                Some(from @ 1..STORAGE_VERSION) => {
                    if from < 2 {
                        tx.execute_batch(SHARES_SCHEMA).map_err(backend)?;
                        tx.execute_batch(V1_TO_V2).map_err(backend)?;
                    }
                    if from < 3 {
                        tx.execute_batch(super::sqlite_access::SCHEMA_V3)
                            .map_err(backend)?;
                    }
                    if from < 4 {
                        tx.execute_batch(&super::sqlite_formats::v3_to_v4())
                            .map_err(backend)?;
                    }
                    if from < 5 {
                        tx.execute_batch(super::sqlite_customer::SCHEMA_V5)
                            .map_err(backend)?;
                    }
                    if from < 6 {
                        tx.execute_batch(super::sqlite_pool::SCHEMA_V6)
                            .map_err(backend)?;
                    }
                    tx.execute("UPDATE schema_version SET version = ?1", [STORAGE_VERSION])
                        .map_err(backend)?;
                    tracing::info!(
                        "database migrated from schema version {from} to {STORAGE_VERSION}"
                    );
                }
                _ => {
                    return Err(StoreError::Backend(format!(
                        "database schema version {v:?}, this build supports 1 to \
                         {STORAGE_VERSION}"
                    )));
                }
            }
        } else {
            tx.execute_batch(SCHEMA).map_err(backend)?;
            tx.execute_batch(SHARES_SCHEMA).map_err(backend)?;
            tx.execute_batch(super::sqlite_access::SCHEMA_V3)
                .map_err(backend)?;
            tx.execute_batch(&super::sqlite_formats::v3_to_v4())
                .map_err(backend)?;
            tx.execute_batch(super::sqlite_customer::SCHEMA_V5)
                .map_err(backend)?;
            tx.execute_batch(super::sqlite_pool::SCHEMA_V6)
                .map_err(backend)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [STORAGE_VERSION],
            )
            .map_err(backend)?;
        }
        super::sqlite_formats::check_readable(&tx)?;
        tx.commit().map_err(backend)
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The open, migrated connection (a restore moves it into the store it swaps).
    pub(super) fn into_connection(self) -> StoreResult<Connection> {
        self.conn.into_inner().map_err(|_| poisoned())
    }

    pub(super) fn lock(&self) -> StoreResult<MutexGuard<'_, Connection>> {
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

    fn storage_ping(&self) -> StoreResult<()> {
        self.read(|tx| {
            tx.query_row("SELECT version FROM schema_version", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|_| ())
            .map_err(backend)
        })
    }
}

pub(super) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn poisoned() -> StoreError {
    StoreError::Backend("database mutex poisoned by an earlier panic".into())
}
