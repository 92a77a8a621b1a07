//! The key pool in SQLite: a flag on `keys` (schema step 6). A pooled key is an ordinary key
//! row with its shares, so backups, restores, master-key rotation (which re-seals `shares`)
//! and refreshes carry it unchanged; only the partial route and the claim look at the flag.

use rusqlite::{OptionalExtension, params};

use super::sqlite::{SqliteStore, backend};
use super::sqlite_keys::i;
use super::{ClaimOutcome, PoolStore, PooledKey, StoreResult};

/// Schema step 6.
pub(super) const SCHEMA_V6: &str = "
ALTER TABLE keys ADD COLUMN pooled INTEGER NOT NULL DEFAULT 0;
CREATE INDEX keys_pooled ON keys (token_id, uid) WHERE pooled = 1;
";

/// Same liveness rule as every key read: no expiry, or an expiry still ahead.
const LIVE: &str = "(expires_at IS NULL OR expires_at > ?2)";

impl PoolStore for SqliteStore {
    fn pool(&self, token: &str, now: u64) -> StoreResult<Vec<PooledKey>> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT uid, bits, modulus, public_exponent FROM keys
                     WHERE token_id = ?1 AND pooled = 1 AND {LIVE} ORDER BY uid"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![token, i(now)], |r| {
                    Ok(PooledKey {
                        uid: r.get(0)?,
                        bits: r.get(1)?,
                        modulus: r.get(2)?,
                        public_exponent: r.get(3)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<_>>().map_err(backend)
        })
    }

    fn claim(
        &self,
        token: &str,
        uid: &str,
        lease_secs: Option<u64>,
        now: u64,
    ) -> StoreResult<ClaimOutcome> {
        self.write(|tx| {
            // The pooled = 1 condition makes the update the arbiter: the write lock is held,
            // so of two claims only the first finds the flag set.
            let changed = tx
                .execute(
                    &format!(
                        "UPDATE keys SET pooled = 0, lease_secs = ?4,
                                expires_at = CASE WHEN ?4 IS NULL THEN NULL ELSE ?2 + ?4 END
                         WHERE token_id = ?1 AND uid = ?3 AND pooled = 1 AND {LIVE}"
                    ),
                    params![token, i(now), uid, lease_secs.map(i)],
                )
                .map_err(backend)?;
            if changed == 1 {
                return Ok(ClaimOutcome::Claimed);
            }
            let live: Option<i64> = tx
                .query_row(
                    &format!("SELECT 1 FROM keys WHERE token_id = ?1 AND uid = ?3 AND {LIVE}"),
                    params![token, i(now), uid],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            Ok(match live {
                Some(_) => ClaimOutcome::NotPooled,
                None => ClaimOutcome::Unknown,
            })
        })
    }
}
