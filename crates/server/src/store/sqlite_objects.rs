//! Public object metadata and its two-phase writes in SQLite.
//!
//! A staged transaction is kept as its request JSON (with the time this cell staged it) until
//! commit; afterwards only its content hash remains, so that a repeated stage or commit of the
//! same txid is recognised forever (ids are random 128-bit values, never reused).
//!
//! Ordering: while a transaction is staged here and not committed, no other transaction that
//! touches one of its objects can be staged here (`Conflict`). So transactions that overlap
//! commit in the same order on every cell, and rolling a late cell forward (a writer stopped
//! between its commits) can never reorder them. A transaction staged more than
//! `COMMIT_WINDOW_SECS` ago is no longer committed here: a writer that slow has lost it, and
//! once every cell's copy is older than `ABANDON_AFTER_SECS` and none committed it, any client
//! may abort it everywhere (the window is half the abandonment age, so no cell commits what
//! another aborts).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use keyfrag_proto::objects::{Attr, ObjectRecord, StageRequest, TxStatus};
use rusqlite::{OptionalExtension, Transaction, params};

use super::sqlite::{SqliteStore, backend};
use super::sqlite_token::now_secs;
use super::{Metadata, ObjectStore, StoreError, StoreResult, TxState};

/// Seconds after staging during which this cell still commits a transaction.
pub const COMMIT_WINDOW_SECS: u64 = 60;
/// Age after which a transaction no cell committed may be aborted by any client.
pub const ABANDON_AFTER_SECS: u64 = 2 * COMMIT_WINDOW_SECS;

/// What the `content` column holds for a staged transaction. Rows written before the staging
/// time was kept hold the bare request (`staged_at` unknown: 0).
#[derive(Serialize, Deserialize)]
struct Staged {
    staged_at: u64,
    request: StageRequest,
}

fn parse_staged(content: &str, txid: &str) -> StoreResult<Staged> {
    serde_json::from_str::<Staged>(content)
        .or_else(|_| {
            serde_json::from_str::<StageRequest>(content).map(|request| Staged {
                staged_at: 0,
                request,
            })
        })
        .map_err(|e| StoreError::Backend(format!("staged tx {txid}: {e}")))
}

fn touched(req: &StageRequest) -> impl Iterator<Item = &str> {
    req.puts
        .iter()
        .map(|o| o.id.as_str())
        .chain(req.deletes.iter().map(String::as_str))
}

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
        let content = serde_json::to_string(&Staged {
            staged_at: now_secs(),
            request: stage.clone(),
        })
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
                    let mine: HashSet<&str> = touched(stage).collect();
                    let mut others = tx
                        .prepare(
                            "SELECT txid, content FROM staged_tx
                             WHERE token_id = ?1 AND committed = 0",
                        )
                        .map_err(backend)?;
                    let rows = others
                        .query_map([token], |r| {
                            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                        })
                        .map_err(backend)?;
                    for row in rows {
                        let (other, content) = row.map_err(backend)?;
                        let pending = parse_staged(&content, &other)?;
                        if let Some(id) = touched(&pending.request).find(|id| mine.contains(id)) {
                            return Err(StoreError::Conflict(format!(
                                "object {id} is being changed by transaction {other}"
                            )));
                        }
                    }
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
            let staged = parse_staged(&content, txid)?;
            if staged.staged_at != 0
                && now_secs().saturating_sub(staged.staged_at) > COMMIT_WINDOW_SECS
            {
                return Err(StoreError::Conflict(format!(
                    "transaction {txid} was staged more than {COMMIT_WINDOW_SECS} s ago and is \
                     no longer committed here"
                )));
            }
            let stage = staged.request;
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

    fn pending(&self, token: &str, limit: usize) -> StoreResult<Vec<String>> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT txid FROM staged_tx WHERE token_id = ?1 AND committed = 0
                     ORDER BY rowid LIMIT ?2",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![token, limit as i64], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
    }

    fn tx_status(&self, token: &str, txid: &str) -> StoreResult<TxState> {
        self.read(|tx| {
            let row: Option<(bool, Option<String>)> = tx
                .query_row(
                    "SELECT committed, content FROM staged_tx WHERE token_id = ?1 AND txid = ?2",
                    params![token, txid],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            Ok(match row {
                None => TxState {
                    status: TxStatus::Unknown,
                    abandoned: false,
                },
                Some((true, _)) => TxState {
                    status: TxStatus::Committed,
                    abandoned: false,
                },
                Some((false, content)) => {
                    let staged = parse_staged(content.as_deref().unwrap_or(""), txid)?;
                    TxState {
                        status: TxStatus::Staged,
                        abandoned: staged.staged_at == 0
                            || now_secs().saturating_sub(staged.staged_at) > ABANDON_AFTER_SECS,
                    }
                }
            })
        })
    }
}
