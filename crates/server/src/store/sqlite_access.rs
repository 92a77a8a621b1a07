//! `AccessKeyStore` on SQLite (tables `operator_tokens` and `access_keys`, schema step 3).

use rusqlite::{OptionalExtension, params};

use super::access_keys::{AccessKeyInfo, AccessKeyStore, AddKey, LiveAccessKey};
use super::sqlite::{SqliteStore, backend};
use super::{StoreError, StoreResult};

pub(super) const SCHEMA_V3: &str = "
CREATE TABLE operator_tokens (
    token_id   TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);
CREATE TABLE access_keys (
    token_id   TEXT NOT NULL,
    name       TEXT NOT NULL,
    key_hash   BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used  INTEGER,
    revoked_at INTEGER,
    PRIMARY KEY (token_id, name)
);
";

fn hash_of(bytes: Vec<u8>) -> StoreResult<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Backend("access key hash is not 32 bytes".into()))
}

impl AccessKeyStore for SqliteStore {
    fn create_token(&self, token: &str, now: u64) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "INSERT OR IGNORE INTO operator_tokens (token_id, created_at) VALUES (?1, ?2)",
                    params![token, now as i64],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
    }

    fn remove_new_token(&self, token: &str) -> StoreResult<bool> {
        self.write(|tx| {
            let used: i64 = tx
                .query_row(
                    "SELECT (SELECT count(*) FROM access_keys WHERE token_id = ?1)
                          + (SELECT count(*) FROM objects WHERE token_id = ?1)
                          + (SELECT count(*) FROM keys WHERE token_id = ?1)",
                    [token],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if used > 0 {
                return Ok(false);
            }
            let n = tx
                .execute("DELETE FROM operator_tokens WHERE token_id = ?1", [token])
                .map_err(backend)?;
            if n == 1 {
                for table in ["tokens", "logins"] {
                    tx.execute(&format!("DELETE FROM {table} WHERE token_id = ?1"), [token])
                        .map_err(backend)?;
                }
            }
            Ok(n == 1)
        })
    }

    fn operator_tokens(&self) -> StoreResult<Vec<String>> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare("SELECT token_id FROM operator_tokens ORDER BY token_id")
                .map_err(backend)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
    }

    fn add_access_key(
        &self,
        token: &str,
        name: &str,
        hash: &[u8; 32],
        now: u64,
    ) -> StoreResult<AddKey> {
        self.write(|tx| {
            let existing: Option<(Vec<u8>, Option<i64>)> = tx
                .query_row(
                    "SELECT key_hash, revoked_at FROM access_keys
                     WHERE token_id = ?1 AND name = ?2",
                    params![token, name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            match existing {
                // A revoked key stays revoked, whoever retries its issue.
                Some((h, None)) if h == hash => return Ok(AddKey::AlreadyThere),
                Some(_) => return Ok(AddKey::NameTaken),
                None => {}
            }
            let n = tx
                .execute(
                    "INSERT OR IGNORE INTO access_keys (token_id, name, key_hash, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![token, name, &hash[..], now as i64],
                )
                .map_err(backend)?;
            // The hash is unique across tokens: a collision means the same key twice.
            Ok(if n == 1 {
                AddKey::Added
            } else {
                AddKey::NameTaken
            })
        })
    }

    fn remove_access_key(&self, token: &str, name: &str, hash: &[u8; 32]) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "DELETE FROM access_keys WHERE token_id = ?1 AND name = ?2 AND key_hash = ?3",
                    params![token, name, &hash[..]],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
    }

    fn revoke_access_key(&self, token: &str, name: &str, now: u64) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE access_keys SET revoked_at = ?3
                     WHERE token_id = ?1 AND name = ?2 AND revoked_at IS NULL",
                    params![token, name, now as i64],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
    }

    fn access_keys(&self, token: &str) -> StoreResult<Vec<AccessKeyInfo>> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT name, created_at, last_used, revoked_at FROM access_keys
                     WHERE token_id = ?1 ORDER BY name",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([token], |r| {
                    Ok(AccessKeyInfo {
                        name: r.get(0)?,
                        created_at: r.get::<_, i64>(1)? as u64,
                        last_used: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                        revoked_at: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
    }

    fn live_access_keys(&self) -> StoreResult<Vec<LiveAccessKey>> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT token_id, name, key_hash FROM access_keys WHERE revoked_at IS NULL",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                    ))
                })
                .map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                let (token, name, hash) = row.map_err(backend)?;
                out.push(LiveAccessKey {
                    token,
                    name,
                    hash: hash_of(hash)?,
                });
            }
            Ok(out)
        })
    }

    fn touch_access_key(&self, hash: &[u8; 32], now: u64) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE access_keys SET last_used = ?2 WHERE key_hash = ?1",
                params![&hash[..], now as i64],
            )
            .map_err(backend)?;
            Ok(())
        })
    }
}
