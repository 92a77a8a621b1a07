//! Public object metadata and its two-phase writes in SQLite.
//!
//! A staged transaction is kept as its request JSON until commit; afterwards only its content
//! hash remains, so that a repeated stage or commit of the same txid is recognised forever
//! (ids are random 128-bit values, never reused).

use keyfrag_proto::objects::{Attr, ObjectRecord, StageRequest};
use rusqlite::{OptionalExtension, Transaction, params};

use super::sqlite::{SqliteStore, backend};
use super::{Metadata, ObjectStore, StoreError, StoreResult};

fn metadata(tx: &Transaction<'_>, token: &str) -> StoreResult<Metadata> {
    let label: Option<String> = tx
        .query_row(
            "SELECT label FROM tokens WHERE token_id = ?1",
            [token],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    let mut stmt = tx
        .prepare("SELECT id, key_uid, attrs FROM objects WHERE token_id = ?1 ORDER BY id")
        .map_err(backend)?;
    let rows = stmt
        .query_map([token], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(backend)?;
    let mut objects = Vec::new();
    for row in rows {
        let (id, key_uid, attrs) = row.map_err(backend)?;
        let attrs: Vec<Attr> = serde_json::from_str(&attrs)
            .map_err(|e| StoreError::Backend(format!("object {id}: bad attrs: {e}")))?;
        objects.push(ObjectRecord { id, key_uid, attrs });
    }
    Ok(Metadata {
        label: label.unwrap_or_default(),
        objects,
    })
}

impl ObjectStore for SqliteStore {
    fn metadata(&self, token: &str) -> StoreResult<Metadata> {
        self.read(|tx| metadata(tx, token))
    }

    fn stage(&self, token: &str, stage: &StageRequest, content_hash: &[u8; 32]) -> StoreResult<()> {
        let content = serde_json::to_string(stage)
            .map_err(|e| StoreError::Backend(format!("encode staged tx: {e}")))?;
        self.write(|tx| {
            let existing: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT content_hash FROM staged_tx WHERE token_id = ?1 AND txid = ?2",
                    params![token, stage.txid],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            match existing {
                Some(h) if h == content_hash[..] => Ok(()),
                Some(_) => Err(StoreError::Conflict(format!(
                    "transaction {} was staged with different content",
                    stage.txid
                ))),
                None => {
                    tx.execute(
                        "INSERT INTO staged_tx (token_id, txid, content_hash, content)
                         VALUES (?1, ?2, ?3, ?4)",
                        params![token, stage.txid, &content_hash[..], content],
                    )
                    .map_err(backend)?;
                    Ok(())
                }
            }
        })
    }

    fn commit(&self, token: &str, txid: &str) -> StoreResult<Metadata> {
        self.write(|tx| {
            let row: Option<(bool, Option<String>)> = tx
                .query_row(
                    "SELECT committed, content FROM staged_tx WHERE token_id = ?1 AND txid = ?2",
                    params![token, txid],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            let content = match row {
                None => {
                    return Err(StoreError::NotFound(format!(
                        "no staged transaction {txid}"
                    )));
                }
                Some((true, _)) => return metadata(tx, token),
                Some((false, content)) => content.unwrap_or_default(),
            };
            let stage: StageRequest = serde_json::from_str(&content)
                .map_err(|e| StoreError::Backend(format!("staged tx {txid}: {e}")))?;
            for o in &stage.puts {
                let attrs = serde_json::to_string(&o.attrs)
                    .map_err(|e| StoreError::Backend(format!("encode attrs: {e}")))?;
                tx.execute(
                    "INSERT OR REPLACE INTO objects (token_id, id, key_uid, attrs)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![token, o.id, o.key_uid, attrs],
                )
                .map_err(backend)?;
            }
            for id in &stage.deletes {
                tx.execute(
                    "DELETE FROM objects WHERE token_id = ?1 AND id = ?2",
                    params![token, id],
                )
                .map_err(backend)?;
            }
            tx.execute(
                "UPDATE staged_tx SET committed = 1, content = NULL
                 WHERE token_id = ?1 AND txid = ?2",
                params![token, txid],
            )
            .map_err(backend)?;
            metadata(tx, token)
        })
    }

    fn abort(&self, token: &str, txid: &str) -> StoreResult<()> {
        self.write(|tx| {
            let committed: Option<bool> = tx
                .query_row(
                    "SELECT committed FROM staged_tx WHERE token_id = ?1 AND txid = ?2",
                    params![token, txid],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            match committed {
                Some(true) => Err(StoreError::Conflict(format!(
                    "transaction {txid} is committed and rolls forward"
                ))),
                Some(false) => {
                    tx.execute(
                        "DELETE FROM staged_tx WHERE token_id = ?1 AND txid = ?2",
                        params![token, txid],
                    )
                    .map_err(backend)?;
                    Ok(())
                }
                // Aborting twice (or a txid this cell never saw) leaves nothing to drop.
                None => Ok(()),
            }
        })
    }
}
