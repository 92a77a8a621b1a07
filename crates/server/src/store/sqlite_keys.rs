//! Sealed key fragments and their leases in SQLite.

use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::sqlite::{SqliteStore, backend};
use super::{KeyRow, KeyStore, PutKeyOutcome, StoreResult};

const COLUMNS: &str = "uid, kind, bits, modulus, public_exponent, epoch, format, sealed_share,
                       lease_secs, expires_at";
/// A key is live while it has no expiry or its expiry is still ahead.
const LIVE: &str = "(expires_at IS NULL OR expires_at > ?2)";

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok(KeyRow {
        uid: r.get(0)?,
        kind: r.get(1)?,
        bits: r.get(2)?,
        modulus: r.get(3)?,
        public_exponent: r.get(4)?,
        epoch: r.get::<_, i64>(5)? as u64,
        format: r.get(6)?,
        sealed_share: r.get(7)?,
        lease_secs: r.get::<_, Option<i64>>(8)?.map(|v| v as u64),
        expires_at: r.get::<_, Option<i64>>(9)?.map(|v| v as u64),
    })
}

fn live_key(tx: &Transaction<'_>, token: &str, uid: &str, now: u64) -> StoreResult<Option<KeyRow>> {
    tx.query_row(
        &format!("SELECT {COLUMNS} FROM keys WHERE token_id = ?1 AND {LIVE} AND uid = ?3"),
        params![token, i(now), uid],
        from_row,
    )
    .optional()
    .map_err(backend)
}

impl KeyStore for SqliteStore {
    fn put_key(&self, token: &str, row: &KeyRow, now: u64) -> StoreResult<PutKeyOutcome> {
        self.write(|tx| {
            if let Some(existing) = live_key(tx, token, &row.uid, now)? {
                return Ok(PutKeyOutcome::Exists(Box::new(existing)));
            }
            // Whatever is left under this uid is expired: it is replaced, as the sweeper would.
            tx.execute(
                "DELETE FROM keys WHERE token_id = ?1 AND uid = ?2",
                params![token, row.uid],
            )
            .map_err(backend)?;
            tx.execute(
                &format!(
                    "INSERT INTO keys (token_id, {COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ),
                params![
                    token,
                    row.uid,
                    row.kind,
                    row.bits,
                    row.modulus,
                    row.public_exponent,
                    i(row.epoch),
                    row.format,
                    row.sealed_share,
                    row.lease_secs.map(i),
                    row.expires_at.map(i),
                ],
            )
            .map_err(backend)?;
            Ok(PutKeyOutcome::Inserted)
        })
    }

    fn key(&self, token: &str, uid: &str, now: u64) -> StoreResult<Option<KeyRow>> {
        self.read(|tx| live_key(tx, token, uid, now))
    }

    fn delete_key(&self, token: &str, uid: &str) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "DELETE FROM keys WHERE token_id = ?1 AND uid = ?2",
                    params![token, uid],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
    }

    fn keys(&self, token: &str, now: u64) -> StoreResult<Vec<KeyRow>> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM keys WHERE token_id = ?1 AND {LIVE} ORDER BY uid"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![token, i(now)], from_row)
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
    }

    fn make_permanent(&self, token: &str, uids: &[String], now: u64) -> StoreResult<Vec<String>> {
        self.write(|tx| {
            let mut missing = Vec::new();
            for uid in uids {
                let changed = tx
                    .execute(
                        &format!(
                            "UPDATE keys SET lease_secs = NULL, expires_at = NULL
                             WHERE token_id = ?1 AND {LIVE} AND uid = ?3"
                        ),
                        params![token, i(now), uid],
                    )
                    .map_err(backend)?;
                if changed == 0 {
                    missing.push(uid.clone());
                }
            }
            Ok(missing)
        })
    }

    fn renew_leases(
        &self,
        token: &str,
        uids: &[String],
        lease_secs: Option<u64>,
        now: u64,
    ) -> StoreResult<Vec<String>> {
        self.write(|tx| {
            let mut missing = Vec::new();
            for uid in uids {
                if live_key(tx, token, uid, now)?.is_none() {
                    missing.push(uid.clone());
                    continue;
                }
                tx.execute(
                    &format!(
                        "UPDATE keys SET lease_secs = coalesce(?4, lease_secs),
                                expires_at = ?2 + coalesce(?4, lease_secs)
                         WHERE token_id = ?1 AND {LIVE} AND uid = ?3 AND lease_secs IS NOT NULL"
                    ),
                    params![token, i(now), uid, lease_secs.map(i)],
                )
                .map_err(backend)?;
            }
            Ok(missing)
        })
    }

    fn sweep_expired(&self, now: u64) -> StoreResult<usize> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM keys WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                [i(now)],
            )
            .map_err(backend)
        })
    }
}
