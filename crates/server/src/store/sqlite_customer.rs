//! The customer card pinned on a token (schema step 5): at most one per token, written once.
//! A whole-database backup (`VACUUM INTO`) carries the table like any other.

use rusqlite::{OptionalExtension, params};

use super::sqlite::{SqliteStore, backend};
use super::{CustomerCardStore, StoreError, StoreResult};

/// Schema step 5.
pub(super) const SCHEMA_V5: &str = "
CREATE TABLE customer_cards (
    token_id  TEXT PRIMARY KEY,
    card      BLOB NOT NULL,
    pinned_at INTEGER NOT NULL
);
";

impl CustomerCardStore for SqliteStore {
    fn customer_card(&self, token: &str) -> StoreResult<Option<Vec<u8>>> {
        self.read(|tx| {
            tx.query_row(
                "SELECT card FROM customer_cards WHERE token_id = ?1",
                [token],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
    }

    fn pin_customer_card(&self, token: &str, card: &[u8], now: u64) -> StoreResult<bool> {
        self.write(|tx| {
            let existing: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT card FROM customer_cards WHERE token_id = ?1",
                    [token],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            match existing {
                Some(pinned) if pinned == card => Ok(false),
                Some(_) => Err(StoreError::Conflict(format!(
                    "token {token} already has another customer card pinned"
                ))),
                None => {
                    tx.execute(
                        "INSERT INTO customer_cards (token_id, card, pinned_at) VALUES (?1, ?2, ?3)",
                        params![token, card, now as i64],
                    )
                    .map_err(backend)?;
                    Ok(true)
                }
            }
        })
    }
}
