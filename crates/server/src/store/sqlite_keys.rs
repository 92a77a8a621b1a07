//! Key fragments, their shares by epoch, and their leases in SQLite.

use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::sqlite::{SqliteStore, backend};
use super::{KeyRow, KeyShares, KeyStat, KeyStore, PutKeyOutcome, ShareRow, StoreResult};

/// A key with its committed share: the share row at the key's epoch.
const SELECT_KEY: &str = "SELECT k.uid, k.kind, k.bits, k.modulus, k.public_exponent, k.epoch,
                                 s.format, s.sealed_share, k.lease_secs, k.expires_at, s.session,
                                 s.check_env, k.pooled
                          FROM keys k JOIN shares s
                            ON s.token_id = k.token_id AND s.uid = k.uid AND s.epoch = k.epoch";
/// A key is live while it has no expiry or its expiry is still ahead.
const LIVE: &str = "(k.expires_at IS NULL OR k.expires_at > ?2)";

pub(super) fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The committed share's run: its session and this cell's check in it.
type Run = (Option<String>, Option<Vec<u8>>);

fn from_row(r: &Row<'_>) -> rusqlite::Result<(KeyRow, Run)> {
    let key = KeyRow {
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
        pooled: r.get(12)?,
    };
    Ok((key, (r.get(10)?, r.get(11)?)))
}

fn live_key(
    tx: &Transaction<'_>,
    token: &str,
    uid: &str,
    now: u64,
) -> StoreResult<Option<(KeyRow, Run)>> {
    tx.query_row(
        &format!("{SELECT_KEY} WHERE k.token_id = ?1 AND {LIVE} AND k.uid = ?3"),
        params![token, i(now), uid],
        from_row,
    )
    .optional()
    .map_err(backend)
}

/// A live key with its previous and pending shares (each at most one: a refresh starts only
/// once the one before is finalized, and only one run is pending at a time).
pub(super) fn live_key_shares(
    tx: &Transaction<'_>,
    token: &str,
    uid: &str,
    now: u64,
) -> StoreResult<Option<KeyShares>> {
    let Some((key, (session, check))) = live_key(tx, token, uid, now)? else {
        return Ok(None);
    };
    let mut stmt = tx
        .prepare_cached(
            "SELECT epoch, pending, format, sealed_share, session, parties, check_env FROM shares
             WHERE token_id = ?1 AND uid = ?2 AND epoch != ?3",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![token, uid, i(key.epoch)], |r| {
            let pending: bool = r.get(1)?;
            let row = ShareRow {
                epoch: r.get::<_, i64>(0)? as u64,
                format: r.get(2)?,
                sealed_share: r.get(3)?,
                session: r.get(4)?,
                parties: split_parties(r.get(5)?),
                check: r.get(6)?,
            };
            Ok((pending, row))
        })
        .map_err(backend)?;
    let (mut previous, mut pending) = (None, None);
    for row in rows {
        match row.map_err(backend)? {
            (true, row) => pending = Some(row),
            (false, row) if row.epoch < key.epoch => previous = Some(row),
            (false, _) => {}
        }
    }
    Ok(Some(KeyShares {
        key,
        session,
        check,
        previous,
        pending,
    }))
}

/// Party names are cell names (no newlines: they are TOML strings the operator chose, and
/// routes refuse a newline in one), stored one per line.
pub(super) fn join_parties(parties: &[String]) -> Option<String> {
    (!parties.is_empty()).then(|| parties.join("\n"))
}

fn split_parties(text: Option<String>) -> Vec<String> {
    text.map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Everything stored under a uid: the key, its shares, its refresh fences.
fn delete_all(tx: &Transaction<'_>, token: &str, uid: &str) -> StoreResult<usize> {
    let mut n = 0;
    for table in ["keys", "shares", "refresh_fences"] {
        n += tx
            .execute(
                &format!("DELETE FROM {table} WHERE token_id = ?1 AND uid = ?2"),
                params![token, uid],
            )
            .map_err(backend)?;
    }
    Ok(n)
}

impl KeyStore for SqliteStore {
    fn put_key(&self, token: &str, row: &KeyRow, now: u64) -> StoreResult<PutKeyOutcome> {
        self.write(|tx| {
            if let Some((existing, _)) = live_key(tx, token, &row.uid, now)? {
                return Ok(PutKeyOutcome::Exists(Box::new(existing)));
            }
            // Whatever is left under this uid is expired: it is replaced, as the sweeper would.
            delete_all(tx, token, &row.uid)?;
            tx.execute(
                "INSERT INTO keys (token_id, uid, kind, bits, modulus, public_exponent, epoch,
                                   lease_secs, expires_at, pooled)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    token,
                    row.uid,
                    row.kind,
                    row.bits,
                    row.modulus,
                    row.public_exponent,
                    i(row.epoch),
                    row.lease_secs.map(i),
                    row.expires_at.map(i),
                    row.pooled,
                ],
            )
            .map_err(backend)?;
            tx.execute(
                "INSERT INTO shares (token_id, uid, epoch, pending, session, format, sealed_share)
                 VALUES (?1, ?2, ?3, 0, NULL, ?4, ?5)",
                params![token, row.uid, i(row.epoch), row.format, row.sealed_share],
            )
            .map_err(backend)?;
            Ok(PutKeyOutcome::Inserted)
        })
    }

    fn key(&self, token: &str, uid: &str, now: u64) -> StoreResult<Option<KeyRow>> {
        self.read(|tx| Ok(live_key(tx, token, uid, now)?.map(|(k, _)| k)))
    }

    fn key_shares(&self, token: &str, uid: &str, now: u64) -> StoreResult<Option<KeyShares>> {
        self.read(|tx| live_key_shares(tx, token, uid, now))
    }

    fn delete_key(&self, token: &str, uid: &str) -> StoreResult<bool> {
        self.write(|tx| Ok(delete_all(tx, token, uid)? > 0))
    }

    fn keys(&self, token: &str, now: u64) -> StoreResult<Vec<KeyShares>> {
        self.read(|tx| {
            let uids: Vec<String> = {
                let mut stmt = tx
                    .prepare(&format!(
                        "SELECT k.uid FROM keys k WHERE k.token_id = ?1 AND {LIVE} ORDER BY k.uid"
                    ))
                    .map_err(backend)?;
                let rows = stmt
                    .query_map(params![token, i(now)], |r| r.get(0))
                    .map_err(backend)?;
                rows.collect::<rusqlite::Result<_>>().map_err(backend)?
            };
            let mut out = Vec::with_capacity(uids.len());
            for uid in uids {
                out.extend(live_key_shares(tx, token, &uid, now)?);
            }
            Ok(out)
        })
    }

    fn key_stats(&self, now: u64) -> StoreResult<Vec<KeyStat>> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT k.token_id, k.kind,
                            CASE WHEN k.pooled THEN 2 WHEN k.lease_secs IS NOT NULL THEN 1
                                 ELSE 0 END AS life,
                            count(*), min(k.epoch), max(k.epoch)
                     FROM keys k WHERE k.expires_at IS NULL OR k.expires_at > ?1
                     GROUP BY k.token_id, k.kind, life ORDER BY 1, 2, 3",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![i(now)], |r| {
                    Ok(KeyStat {
                        token: r.get(0)?,
                        kind: r.get(1)?,
                        lifetime: match r.get::<_, i64>(2)? {
                            2 => "pooled",
                            1 => "session",
                            _ => "token",
                        },
                        count: r.get::<_, i64>(3)? as u64,
                        min_epoch: r.get::<_, i64>(4)? as u64,
                        max_epoch: r.get::<_, i64>(5)? as u64,
                    })
                })
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<_>>().map_err(backend)
        })
    }

    fn make_permanent(&self, token: &str, uids: &[String], now: u64) -> StoreResult<Vec<String>> {
        self.write(|tx| {
            let mut missing = Vec::new();
            for uid in uids {
                let changed = tx
                    .execute(
                        &format!(
                            "UPDATE keys AS k SET lease_secs = NULL, expires_at = NULL
                             WHERE k.token_id = ?1 AND {LIVE} AND k.uid = ?3"
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
                        "UPDATE keys AS k SET lease_secs = coalesce(?4, lease_secs),
                                expires_at = ?2 + coalesce(?4, lease_secs)
                         WHERE k.token_id = ?1 AND {LIVE} AND k.uid = ?3
                           AND k.lease_secs IS NOT NULL"
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
            for table in ["shares", "refresh_fences"] {
                tx.execute(
                    &format!(
                        "DELETE FROM {table} WHERE (token_id, uid) IN
                           (SELECT token_id, uid FROM keys
                            WHERE expires_at IS NOT NULL AND expires_at <= ?1)"
                    ),
                    [i(now)],
                )
                .map_err(backend)?;
            }
            tx.execute(
                "DELETE FROM keys WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                [i(now)],
            )
            .map_err(backend)
        })
    }

    fn replace_share(
        &self,
        token: &str,
        uid: &str,
        epoch: u64,
        old: &[u8],
        new: &[u8],
    ) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE shares SET sealed_share = ?5
                     WHERE token_id = ?1 AND uid = ?2 AND epoch = ?3 AND sealed_share = ?4",
                    params![token, uid, i(epoch), old, new],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
    }
}
