//! Finishing or undoing a run left unfinished by a crash, a cut or a stopped cell
//! (docs/REFRESH.md "Recovery"). Which one depends only on what the cells report:
//!
//! - every cell has the run pending or committed: roll forward (collect the checks again,
//!   COMMIT where pending, FINALIZE everywhere). This is also the only way out once any cell
//!   committed, since a cell commits only with every party's check in hand.
//! - no cell committed it and some cell never prepared it: undo. The cells that never
//!   prepared are fenced first (ABORT with `only_if_absent`), so the run can never gather
//!   their checks and can never commit anywhere; only then are the pending shares dropped.
//!   A cell that prepared meanwhile refuses the fence, and the run is left for later.
//! - committed somewhere yet absent elsewhere: impossible under the protocol; reported.

use futures::future::join_all;
use keyfrag_proto::keys::KeySummary;
use keyfrag_proto::refresh::{
    AbortRequest, CheckResponse, CommitRequest, EpochResponse, SessionRequest,
};
use keyfrag_proto::token::Ack;

use super::{Driver, device};
use crate::cluster::{all_ok, post};
use crate::error::{ClientError, ErrorKind, Result};

/// A run some cell still holds: pending, or committed but not finalized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Unfinished {
    pub(super) session: String,
    pub(super) from_epoch: u64,
}

pub(super) fn unfinished(statuses: &[KeySummary]) -> Option<Unfinished> {
    let pending = statuses.iter().find_map(|k| {
        k.pending.as_ref().map(|p| Unfinished {
            session: p.session.clone(),
            from_epoch: p.epoch.saturating_sub(1),
        })
    });
    pending.or_else(|| {
        statuses
            .iter()
            .find_map(|k| match (k.previous_epoch, &k.epoch_session) {
                (Some(previous), Some(session)) => Some(Unfinished {
                    session: session.clone(),
                    from_epoch: previous,
                }),
                _ => None,
            })
    })
}

/// The committed epoch a new run starts from: the same on every cell, nothing pending or
/// unfinalized anywhere, and a token key.
pub(super) fn settled_epoch(uid: &str, statuses: &[KeySummary]) -> Result<u64> {
    if statuses.iter().any(|k| k.lease_remaining_secs.is_some()) {
        return Err(ClientError::new(
            ErrorKind::Refused,
            format!("key {uid} is a session key: only token keys are refreshed"),
        ));
    }
    let epoch = statuses[0].epoch;
    let settled = statuses
        .iter()
        .all(|k| k.epoch == epoch && k.pending.is_none() && k.previous_epoch.is_none());
    if settled {
        Ok(epoch)
    } else {
        let epochs: Vec<String> = statuses.iter().map(|k| k.epoch.to_string()).collect();
        Err(device(format!(
            "key {uid}: the cells are at epochs {} with a refresh still unresolved (another \
             client may be refreshing it); try again",
            epochs.join(", ")
        )))
    }
}

/// What `resolve` did with an unfinished run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Resolved {
    RolledForward { session: String, epoch: u64 },
    Undone { session: String },
}

impl std::fmt::Display for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resolved::RolledForward { session, epoch } => {
                write!(f, "rolled refresh {session} forward to epoch {epoch}")
            }
            Resolved::Undone { session } => write!(f, "undid refresh {session}"),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    Committed,
    Pending,
    Absent,
}

fn held(k: &KeySummary, session: &str) -> Held {
    if k.epoch_session.as_deref() == Some(session) {
        Held::Committed
    } else if k.pending.as_ref().is_some_and(|p| p.session == session) {
        Held::Pending
    } else {
        Held::Absent
    }
}

impl Driver<'_> {
    /// Finish or undo `run` from the cells' `statuses`; returns what was done.
    pub(super) async fn resolve(
        &self,
        uid: &str,
        run: &Unfinished,
        statuses: &[KeySummary],
    ) -> Result<Resolved> {
        let held: Vec<Held> = statuses.iter().map(|k| held(k, &run.session)).collect();
        let committed = held.contains(&Held::Committed);
        if !held.contains(&Held::Absent) {
            match self.roll_forward(uid, run, &held).await {
                Ok(epoch) => {
                    tracing::info!(key = uid, session = %run.session, epoch, "refresh rolled forward");
                    return Ok(Resolved::RolledForward {
                        session: run.session.clone(),
                        epoch,
                    });
                }
                // Refused by a cell's own check with nobody committed: it can never commit.
                Err(e) if !committed && e.kind == ErrorKind::Refused => {
                    tracing::error!(key = uid, "refresh check refused by a cell: {}", e.message);
                }
                Err(e) => return Err(e),
            }
        } else if committed {
            let names = |h: Held| {
                held.iter()
                    .zip(&self.names)
                    .filter(|(x, _)| **x == h)
                    .map(|(_, n)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(device(format!(
                "refresh {} of key {uid} is committed on {} but unknown to {}: the cells \
                 disagree and need an operator (the key is still served at its older epoch)",
                run.session,
                names(Held::Committed),
                names(Held::Absent)
            )));
        }
        self.undo(uid, run, &held).await?;
        tracing::info!(key = uid, session = %run.session, "unfinished refresh undone");
        Ok(Resolved::Undone {
            session: run.session.clone(),
        })
    }

    async fn roll_forward(&self, uid: &str, run: &Unfinished, held: &[Held]) -> Result<u64> {
        let path = |step: &str| format!("keys/{uid}/refresh/{step}");
        let session = SessionRequest {
            session: run.session.clone(),
        };
        if held.contains(&Held::Pending) {
            let checks: Vec<CheckResponse> = all_ok(self.all(&path("check"), &session).await)?;
            let commit = CommitRequest {
                session: run.session.clone(),
                checks: checks.into_iter().map(|c| c.check).collect(),
            };
            all_ok(self.all::<_, EpochResponse>(&path("commit"), &commit).await)?;
        }
        let done: Vec<EpochResponse> = all_ok(self.all(&path("finalize"), &session).await)?;
        Ok(done[0].epoch)
    }

    /// Fence the cells that never prepared the run, then drop its pending shares.
    async fn undo(&self, uid: &str, run: &Unfinished, held: &[Held]) -> Result<()> {
        let path = format!("keys/{uid}/refresh/abort");
        for only_if_absent in [true, false] {
            let body = AbortRequest {
                session: run.session.clone(),
                epoch: run.from_epoch,
                only_if_absent,
            };
            let wanted = if only_if_absent {
                Held::Absent
            } else {
                Held::Pending
            };
            let results = join_all(
                self.t
                    .cells
                    .iter()
                    .zip(held)
                    .filter(|(_, h)| **h == wanted)
                    .map(|(c, _)| c.call::<_, Ack>(post(&path, &body, None, true))),
            )
            .await;
            all_ok(results).map_err(|e| {
                device(format!(
                    "refresh {} of key {uid} could not be undone ({}); try again",
                    run.session, e.message
                ))
            })?;
        }
        Ok(())
    }

    /// After a failure before any COMMIT was sent: resolve this run now if every cell
    /// answers. Returns the epoch if it could be rolled forward after all.
    pub(super) async fn give_up(&self, uid: &str, session: &str, from: u64) -> Option<u64> {
        let run = Unfinished {
            session: session.to_owned(),
            from_epoch: from,
        };
        let outcome = match self.statuses(uid).await {
            Ok(statuses) => self.resolve(uid, &run, &statuses).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(Resolved::RolledForward { epoch, .. }) => Some(epoch),
            Ok(Resolved::Undone { .. }) => None,
            Err(e) => {
                tracing::warn!(
                    key = uid,
                    %session,
                    "refresh left for the next run to resolve: {}",
                    e.message
                );
                None
            }
        }
    }

    /// Undo a run whose own check failed (no COMMIT was sent; the cells would refuse one).
    pub(super) async fn discard(&self, uid: &str, session: &str, from: u64) {
        let run = Unfinished {
            session: session.to_owned(),
            from_epoch: from,
        };
        let held = match self.statuses(uid).await {
            Ok(statuses) => statuses
                .iter()
                .map(|k| held(k, session))
                .collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!(
                    key = uid,
                    "failed refresh left for the next run: {}",
                    e.message
                );
                return;
            }
        };
        if let Err(e) = self.undo(uid, &run, &held).await {
            tracing::warn!(
                key = uid,
                "failed refresh left for the next run: {}",
                e.message
            );
        }
    }
}
