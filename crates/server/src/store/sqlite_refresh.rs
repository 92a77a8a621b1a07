//! The steps of a refresh run in SQLite, each one IMMEDIATE transaction (docs/REFRESH.md).
//!
//! Shares of one key: the committed one at `keys.epoch`; the previous one at epoch − 1 until
//! FINALIZE; a pending one at epoch + 1 (`pending = 1`) between PREPARE and COMMIT. COMMIT
//! is one transaction that flips the pending row and moves `keys.epoch`, so a crash leaves
//! the key either wholly before or wholly after it.

use rusqlite::{OptionalExtension, Transaction, params};

use super::sqlite::{SqliteStore, backend};
use super::sqlite_keys::{i, join_parties, live_key_shares};
use super::{KeyShares, RefreshStore, ShareRow, StoreError, StoreResult};

fn no_key(uid: &str) -> StoreError {
    StoreError::NotFound(format!("no key {uid}"))
}

fn conflict(msg: String) -> StoreError {
    StoreError::Conflict(msg)
}

fn fenced(tx: &Transaction<'_>, token: &str, uid: &str, session: &str) -> StoreResult<bool> {
    tx.query_row(
        "SELECT 1 FROM refresh_fences WHERE token_id = ?1 AND uid = ?2 AND session = ?3",
        params![token, uid, session],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
    .map_err(backend)
}

fn pending_session(k: &KeyShares) -> Option<&str> {
    k.pending.as_ref().and_then(|p| p.session.as_deref())
}

impl RefreshStore for SqliteStore {
    fn put_pending(
        &self,
        token: &str,
        uid: &str,
        from_epoch: u64,
        session: &str,
        share: &ShareRow,
        now: u64,
    ) -> StoreResult<()> {
        self.write(|tx| {
            let k = live_key_shares(tx, token, uid, now)?.ok_or_else(|| no_key(uid))?;
            if k.session.as_deref() == Some(session) || pending_session(&k) == Some(session) {
                return Ok(());
            }
            if fenced(tx, token, uid, session)? {
                return Err(conflict(format!(
                    "refresh {session} of key {uid} was aborted"
                )));
            }
            if let Some(other) = pending_session(&k) {
                return Err(conflict(format!(
                    "key {uid} has refresh {other} pending; resolve it first"
                )));
            }
            if k.key.epoch != from_epoch {
                return Err(conflict(format!(
                    "key {uid} is at epoch {}, not {from_epoch}",
                    k.key.epoch
                )));
            }
            if k.previous.is_some() {
                return Err(conflict(format!(
                    "key {uid}: the refresh to epoch {from_epoch} is not finalized"
                )));
            }
            if share.epoch != from_epoch + 1 {
                return Err(StoreError::Backend(
                    "pending share sealed for the wrong epoch".into(),
                ));
            }
            tx.execute(
                "INSERT INTO shares (token_id, uid, epoch, pending, session, parties, check_env,
                                     format, sealed_share)
                 VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8)",
                params![
                    token,
                    uid,
                    i(share.epoch),
                    session,
                    join_parties(&share.parties),
                    share.check,
                    share.format,
                    share.sealed_share
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn commit_pending(&self, token: &str, uid: &str, session: &str, now: u64) -> StoreResult<u64> {
        self.write(|tx| {
            let k = live_key_shares(tx, token, uid, now)?.ok_or_else(|| no_key(uid))?;
            if k.session.as_deref() == Some(session) {
                return Ok(k.key.epoch);
            }
            let pending = match &k.pending {
                Some(p) if p.session.as_deref() == Some(session) => p.epoch,
                _ => {
                    return Err(conflict(format!(
                        "refresh {session} of key {uid} is not pending on this cell"
                    )));
                }
            };
            tx.execute(
                "UPDATE shares SET pending = 0 WHERE token_id = ?1 AND uid = ?2 AND epoch = ?3",
                params![token, uid, i(pending)],
            )
            .map_err(backend)?;
            tx.execute(
                "UPDATE keys SET epoch = ?3 WHERE token_id = ?1 AND uid = ?2",
                params![token, uid, i(pending)],
            )
            .map_err(backend)?;
            // Runs that left an older epoch can never prepare again: their fences are moot.
            tx.execute(
                "DELETE FROM refresh_fences WHERE token_id = ?1 AND uid = ?2 AND epoch < ?3",
                params![token, uid, i(pending)],
            )
            .map_err(backend)?;
            Ok(pending)
        })
    }

    fn finalize_refresh(
        &self,
        token: &str,
        uid: &str,
        session: &str,
        now: u64,
    ) -> StoreResult<u64> {
        self.write(|tx| {
            let k = live_key_shares(tx, token, uid, now)?.ok_or_else(|| no_key(uid))?;
            if k.session.as_deref() != Some(session) {
                return Err(conflict(format!(
                    "refresh {session} of key {uid} is not the committed one on this cell"
                )));
            }
            // secure_delete is on: the old share's pages are overwritten, not just unlinked.
            tx.execute(
                "DELETE FROM shares WHERE token_id = ?1 AND uid = ?2 AND pending = 0 AND epoch < ?3",
                params![token, uid, i(k.key.epoch)],
            )
            .map_err(backend)?;
            Ok(k.key.epoch)
        })
    }

    fn abort_refresh(
        &self,
        token: &str,
        uid: &str,
        session: &str,
        from_epoch: u64,
        only_if_absent: bool,
        now: u64,
    ) -> StoreResult<()> {
        self.write(|tx| {
            let Some(k) = live_key_shares(tx, token, uid, now)? else {
                return Ok(());
            };
            if k.session.as_deref() == Some(session) {
                return Err(conflict(format!(
                    "refresh {session} of key {uid} is committed on this cell: it rolls forward"
                )));
            }
            if pending_session(&k) == Some(session) {
                if only_if_absent {
                    return Err(conflict(format!(
                        "refresh {session} of key {uid} is pending on this cell"
                    )));
                }
                tx.execute(
                    "DELETE FROM shares WHERE token_id = ?1 AND uid = ?2 AND pending = 1",
                    params![token, uid],
                )
                .map_err(backend)?;
            }
            tx.execute(
                "INSERT OR IGNORE INTO refresh_fences (token_id, uid, session, epoch)
                 VALUES (?1, ?2, ?3, ?4)",
                params![token, uid, session, i(from_epoch)],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn refresh_fenced(&self, token: &str, uid: &str, session: &str) -> StoreResult<bool> {
        self.read(|tx| fenced(tx, token, uid, session))
    }
}
