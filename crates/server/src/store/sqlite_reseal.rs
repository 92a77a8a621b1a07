//! `ResealStore` on SQLite.

use rusqlite::params;

use super::StoreResult;
use super::reseal::{ResealStore, SealedRow};
use super::sqlite::{SqliteStore, backend};
use crate::sealing::{KEY_ID_LEN, SHARE_FORMAT_V2};

impl ResealStore for SqliteStore {
    fn shares_to_reseal(&self, key_id: &[u8], limit: usize) -> StoreResult<Vec<SealedRow>> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT token_id, uid, epoch, format, sealed_share FROM shares
                     WHERE format != ?1 OR substr(sealed_share, 1, ?2) != ?3
                     ORDER BY token_id, uid, epoch LIMIT ?4",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![SHARE_FORMAT_V2, KEY_ID_LEN as i64, key_id, limit as i64],
                    |r| {
                        Ok(SealedRow {
                            token: r.get(0)?,
                            uid: r.get(1)?,
                            epoch: r.get::<_, i64>(2)? as u64,
                            format: r.get(3)?,
                            sealed: r.get(4)?,
                        })
                    },
                )
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
    }

    fn replace_sealed(&self, rows: &[(SealedRow, u32, Vec<u8>)]) -> StoreResult<usize> {
        self.write(|tx| {
            let mut changed = 0;
            for (old, format, sealed) in rows {
                changed += tx
                    .execute(
                        "UPDATE shares SET format = ?1, sealed_share = ?2
                         WHERE token_id = ?3 AND uid = ?4 AND epoch = ?5 AND sealed_share = ?6",
                        params![
                            format,
                            sealed,
                            old.token,
                            old.uid,
                            old.epoch as i64,
                            old.sealed
                        ],
                    )
                    .map_err(backend)?;
            }
            Ok(changed)
        })
    }
}
