//! Token state, PIN verifiers and counters, and logins in SQLite.

use keyfrag_proto::token::UserKind;
use rusqlite::{OptionalExtension, Transaction, params};

use super::sqlite::{SqliteStore, backend};
use super::{PinAttempt, PinState, StoreError, StoreResult, TokenState, TokenStore};

/// Column names per PIN (fixed strings, never caller input).
fn cols(kind: UserKind) -> (&'static str, &'static str) {
    match kind {
        UserKind::User => ("user_verifier", "user_failures"),
        UserKind::So => ("so_verifier", "so_failures"),
    }
}

fn kind_text(kind: UserKind) -> &'static str {
    match kind {
        UserKind::User => "user",
        UserKind::So => "so",
    }
}

fn ensure_row(tx: &Transaction<'_>, token: &str) -> StoreResult<()> {
    tx.execute(
        "INSERT OR IGNORE INTO tokens (token_id) VALUES (?1)",
        [token],
    )
    .map_err(backend)?;
    Ok(())
}

pub(super) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TokenStore for SqliteStore {
    fn token_state(&self, token: &str) -> StoreResult<TokenState> {
        self.read(|tx| {
            let row = tx
                .query_row(
                    "SELECT initialized, label, so_verifier IS NOT NULL, so_failures,
                            user_verifier IS NOT NULL, user_failures
                     FROM tokens WHERE token_id = ?1",
                    [token],
                    |r| {
                        Ok(TokenState {
                            initialized: r.get(0)?,
                            label: r.get(1)?,
                            so: PinState {
                                set: r.get(2)?,
                                failures: r.get(3)?,
                            },
                            user: PinState {
                                set: r.get(4)?,
                                failures: r.get(5)?,
                            },
                        })
                    },
                )
                .optional()
                .map_err(backend)?;
            Ok(row.unwrap_or_default())
        })
    }

    fn begin_pin_attempt(
        &self,
        token: &str,
        kind: UserKind,
        max_failures: u32,
    ) -> StoreResult<PinAttempt> {
        let (vcol, fcol) = cols(kind);
        self.write(|tx| {
            ensure_row(tx, token)?;
            let (verifier, failures): (Option<String>, u32) = tx
                .query_row(
                    &format!("SELECT {vcol}, {fcol} FROM tokens WHERE token_id = ?1"),
                    [token],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(backend)?;
            let Some(verifier) = verifier else {
                return Ok(PinAttempt::NotSet);
            };
            if failures >= max_failures {
                return Ok(PinAttempt::Locked);
            }
            tx.execute(
                &format!("UPDATE tokens SET {fcol} = {fcol} + 1 WHERE token_id = ?1"),
                [token],
            )
            .map_err(backend)?;
            Ok(PinAttempt::Verify(verifier))
        })
    }

    fn pin_attempt_succeeded(&self, token: &str, kind: UserKind) -> StoreResult<()> {
        let (_, fcol) = cols(kind);
        self.write(|tx| {
            tx.execute(
                &format!("UPDATE tokens SET {fcol} = 0 WHERE token_id = ?1"),
                [token],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn set_pin(&self, token: &str, kind: UserKind, verifier: &str) -> StoreResult<()> {
        let (vcol, fcol) = cols(kind);
        self.write(|tx| {
            ensure_row(tx, token)?;
            tx.execute(
                &format!("UPDATE tokens SET {vcol} = ?2, {fcol} = 0 WHERE token_id = ?1"),
                params![token, verifier],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn init_token(
        &self,
        token: &str,
        was_initialized: bool,
        so_verifier: Option<&str>,
        label: &str,
    ) -> StoreResult<()> {
        self.write(|tx| {
            ensure_row(tx, token)?;
            let initialized: bool = tx
                .query_row(
                    "SELECT initialized FROM tokens WHERE token_id = ?1",
                    [token],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if initialized != was_initialized {
                return Err(StoreError::Conflict(
                    "the token was initialised concurrently; retry".into(),
                ));
            }
            tx.execute(
                "UPDATE tokens SET initialized = 1, label = ?2,
                        so_verifier = coalesce(?3, so_verifier), so_failures = 0,
                        user_verifier = NULL, user_failures = 0
                 WHERE token_id = ?1",
                params![token, label, so_verifier],
            )
            .map_err(backend)?;
            for table in [
                "objects",
                "staged_tx",
                "keys",
                "shares",
                "refresh_fences",
                "logins",
            ] {
                tx.execute(&format!("DELETE FROM {table} WHERE token_id = ?1"), [token])
                    .map_err(backend)?;
            }
            Ok(())
        })
    }

    fn add_login(&self, token: &str, login_hash: &[u8; 32], kind: UserKind) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO logins (token_id, login_hash, kind, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![token, &login_hash[..], kind_text(kind), now_secs() as i64],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn login_kind(&self, token: &str, login_hash: &[u8; 32]) -> StoreResult<Option<UserKind>> {
        self.read(|tx| {
            let kind: Option<String> = tx
                .query_row(
                    "SELECT kind FROM logins WHERE token_id = ?1 AND login_hash = ?2",
                    params![token, &login_hash[..]],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            Ok(match kind.as_deref() {
                Some("user") => Some(UserKind::User),
                Some("so") => Some(UserKind::So),
                _ => None,
            })
        })
    }

    fn remove_login(&self, token: &str, login_hash: &[u8; 32]) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM logins WHERE token_id = ?1 AND login_hash = ?2",
                params![token, &login_hash[..]],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn revoke_logins(&self, token: &str, kind: UserKind) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM logins WHERE token_id = ?1 AND kind = ?2",
                params![token, kind_text(kind)],
            )
            .map_err(backend)?;
            Ok(())
        })
    }
}
