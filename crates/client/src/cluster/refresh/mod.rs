//! Proactive refresh of a token key's fragments, driven by the client (DESIGN.md "Refresh",
//! docs/REFRESH.md). The client only relays: cells deal sealed deltas to each other through
//! it, and it never sees a share or a delta. No PIN is needed: the check before COMMIT is on a
//! hashed input and compares the cells' products under both epochs.
//!
//! One run, for a key every cell holds at committed epoch e with nothing pending:
//! DEAL (every cell) → route the sealed deltas → PREPARE (every cell stores a pending share
//! and returns a signed check) → check Π old = Π pending and (Π pending)^e = x² → COMMIT
//! (every cell) → FINALIZE (every cell, only once all acknowledged COMMIT).
//!
//! Failure before COMMIT is sent: the run is resolved at once if every cell answers
//! (`recover`), else left for the next refresh. Failure at or after COMMIT: never aborted;
//! the next refresh rolls it forward. Either way the key stays usable at an epoch every cell
//! serves, and the next refresh finishes what was left before it starts a new run.

mod recover;

use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::join_all;
use keyfrag_core::dprf::refresh::{PrfCheck, same_function};
use keyfrag_core::refresh::{CheckPartials, check_input, product_matches_key, products_match};
use keyfrag_core::relay::Envelope;
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_proto::keys::KeySummary;
use keyfrag_proto::prf::KIND_PRF;
use keyfrag_proto::refresh::{
    CheckResponse, CommitRequest, DealRequest, DealResponse, EpochResponse, PrepareRequest,
    SessionRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Cluster, Transport, all_ok, check_agreement, get, post};
use crate::error::{ClientError, ErrorKind, Result};

/// Where a run is when a fault-injection hook (tests only) runs: between two steps, with no
/// request in flight.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshPoint {
    BeforeDeal,
    BeforePrepare,
    BeforeCommit,
    BeforeFinalize,
}

/// What a fault-injection hook wants the run to do next.
#[cfg(feature = "fault-injection")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    Continue,
    /// Stop here as a crashed client would: no clean-up at all.
    Abandon,
}

#[cfg(feature = "fault-injection")]
type Hook<'a> = Option<&'a (dyn Fn(RefreshPoint) -> FaultAction + Sync)>;
#[cfg(not(feature = "fault-injection"))]
type Hook<'a> = std::marker::PhantomData<&'a ()>;

/// One key refreshed.
#[derive(Clone, Debug)]
pub struct RefreshOutcome {
    pub uid: String,
    pub from_epoch: u64,
    pub epoch: u64,
    /// What was finished or undone first, if an earlier run was left unfinished.
    pub recovered: Option<String>,
    pub elapsed: Duration,
}

fn device(message: String) -> ClientError {
    ClientError::new(ErrorKind::Device, message)
}

/// Why a run stopped before COMMIT, which decides what happens to it.
enum Stop {
    /// A fault-injection hook abandoned it, as a crashed client would: nothing more.
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    Abandoned(ClientError),
    /// Its own check failed: undone (no cell would commit it).
    CheckFailed(ClientError),
    /// A step failed: resolved at once if every cell answers, else by the next refresh.
    Failed(ClientError),
}

impl Stop {
    fn into_error(self) -> ClientError {
        match self {
            Stop::Abandoned(e) | Stop::CheckFailed(e) | Stop::Failed(e) => e,
        }
    }
}

impl From<ClientError> for Stop {
    fn from(e: ClientError) -> Self {
        Stop::Failed(e)
    }
}

/// Runs of `refresh_all` in flight at once.
pub const DEFAULT_PARALLEL: usize = 16;

impl Cluster {
    /// Refresh one token key: finish or undo any run left unfinished, then one new run.
    /// Returns the epochs; on error the key stays usable and the next refresh completes.
    pub fn refresh_key(&self, uid: &str) -> Result<RefreshOutcome> {
        let t = self.transport()?;
        let driver = Driver::new(&t, self.cell_names(), Hook::default());
        t.runtime.block_on(driver.refresh(uid))
    }

    /// Every token key (session keys are never refreshed), `parallel` runs at a time. One
    /// result per key, in uid order; a key that fails does not stop the others.
    pub fn refresh_all(&self, parallel: usize) -> Result<Vec<(String, Result<RefreshOutcome>)>> {
        let uids: Vec<String> = self
            .list_keys()?
            .into_iter()
            .filter(|k| k.lease_remaining_secs.is_none())
            .map(|k| k.uid)
            .collect();
        let t = self.transport()?;
        let driver = Driver::new(&t, self.cell_names(), Hook::default());
        let mut out: Vec<(String, Result<RefreshOutcome>)> = t.runtime.block_on(
            futures::stream::iter(uids)
                .map(|uid| {
                    let driver = &driver;
                    async move {
                        let r = driver.refresh(&uid).await;
                        (uid, r)
                    }
                })
                .buffer_unordered(parallel.max(1))
                .collect(),
        );
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// `refresh_key` with a hook between the steps of each run (tests: stop a cell, or
    /// abandon the run as a crashed client would). Only in builds with `fault-injection`.
    #[cfg(feature = "fault-injection")]
    pub fn refresh_key_with_faults(
        &self,
        uid: &str,
        hook: &(dyn Fn(RefreshPoint) -> FaultAction + Sync),
    ) -> Result<RefreshOutcome> {
        let t = self.transport()?;
        let driver = Driver::new(&t, self.cell_names(), Some(hook));
        t.runtime.block_on(driver.refresh(uid))
    }
}

/// The relay for refresh runs of one token.
pub(super) struct Driver<'a> {
    t: &'a Transport,
    names: Vec<String>,
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    hook: Hook<'a>,
}

impl<'a> Driver<'a> {
    fn new(t: &'a Transport, names: Vec<String>, hook: Hook<'a>) -> Self {
        Driver { t, names, hook }
    }

    /// The hook's verdict at `point` (always "go on" in builds without fault injection).
    fn at(&self, point: RefreshPoint) -> std::result::Result<(), Stop> {
        #[cfg(feature = "fault-injection")]
        if let Some(hook) = self.hook
            && hook(point) == FaultAction::Abandon
        {
            return Err(Stop::Abandoned(device(format!(
                "run abandoned at {point:?} (fault injection)"
            ))));
        }
        let _ = point;
        Ok(())
    }

    /// The same request to every cell; answers in cell order (each step is idempotent, so
    /// transport failures are retried).
    async fn all<B: Serialize, R: DeserializeOwned>(&self, path: &str, body: &B) -> Vec<Result<R>> {
        join_all(
            self.t
                .cells
                .iter()
                .map(|c| c.call(post(path, body, None, true))),
        )
        .await
    }

    async fn statuses(&self, uid: &str) -> Result<Vec<KeySummary>> {
        let path = format!("keys/{uid}");
        all_ok(
            join_all(
                self.t
                    .cells
                    .iter()
                    .map(|c| c.call::<_, KeySummary>(get(&path))),
            )
            .await,
        )
    }

    async fn refresh(&self, uid: &str) -> Result<RefreshOutcome> {
        let started = Instant::now();
        let mut statuses = self.statuses(uid).await?;
        let mut recovered = None;
        // Each resolution finishes one run; a second one left behind is (at most) the one a
        // concurrent client is running, which the next pass sees finished or undone.
        for _ in 0..3 {
            let Some(run) = recover::unfinished(&statuses) else {
                break;
            };
            recovered = Some(self.resolve(uid, &run, &statuses).await?.to_string());
            statuses = self.statuses(uid).await?;
        }
        let from = recover::settled_epoch(uid, &statuses)?;
        let epoch = self.run(uid, from).await?;
        Ok(RefreshOutcome {
            uid: uid.to_owned(),
            from_epoch: from,
            epoch,
            recovered,
            elapsed: started.elapsed(),
        })
    }

    /// One new run from committed epoch `from`; returns the new epoch.
    async fn run(&self, uid: &str, from: u64) -> Result<u64> {
        let session = keyfrag_core::random::uid_hex().map_err(|e| device(e.to_string()))?;
        let checks = match self.prepare(uid, &session, from).await {
            Ok(checks) => checks,
            Err(Stop::Abandoned(e)) => return Err(e),
            Err(Stop::CheckFailed(e)) => {
                self.discard(uid, &session, from).await;
                return Err(e);
            }
            // No COMMIT was sent: resolve the run now if every cell answers (it may even
            // roll forward, if every cell prepared after all).
            Err(Stop::Failed(e)) => {
                return match self.give_up(uid, &session, from).await {
                    Some(epoch) => Ok(epoch),
                    None => Err(e),
                };
            }
        };
        self.at(RefreshPoint::BeforeCommit)
            .map_err(Stop::into_error)?;
        let path = format!("keys/{uid}/refresh/commit");
        let commit = CommitRequest {
            session: session.clone(),
            checks,
        };
        let committed: Vec<EpochResponse> =
            all_ok(self.all(&path, &commit).await).map_err(|e| {
                device(format!(
                    "refresh {session} of key {uid} committed on some cells only ({}); the next \
                     refresh rolls it forward",
                    e.message
                ))
            })?;
        if committed.iter().any(|c| c.epoch != from + 1) {
            return Err(device(format!(
                "refresh {session} of key {uid}: a cell committed another epoch than {}",
                from + 1
            )));
        }
        self.at(RefreshPoint::BeforeFinalize)
            .map_err(Stop::into_error)?;
        self.finalize(uid, &session).await?;
        Ok(from + 1)
    }

    /// DEAL, route, PREPARE, and the client's own check: every cell's signed check.
    async fn prepare(
        &self,
        uid: &str,
        session: &str,
        from: u64,
    ) -> std::result::Result<Vec<Vec<u8>>, Stop> {
        let path = |step: &str| format!("keys/{uid}/refresh/{step}");
        self.at(RefreshPoint::BeforeDeal)?;
        let deal = DealRequest {
            session: session.to_owned(),
            epoch: from,
            parties: self.names.clone(),
        };
        let deals: Vec<DealResponse> = all_ok(self.all(&path("deal"), &deal).await)?;
        let key = |d: &DealResponse| (d.kind.clone(), d.modulus.clone(), d.public_exponent.clone());
        check_agreement(self.t, &deals, key, "public key")?;
        // A PRF key has no shared public part; its cells check its commitments at COMMIT.
        let public = match deals[0].kind.as_str() {
            KIND_PRF => None,
            _ => Some(
                RsaPublic::new(&deals[0].modulus, &deals[0].public_exponent).map_err(|e| {
                    device(format!("key {uid}: the cells hold a bad public key: {e}"))
                })?,
            ),
        };
        let inboxes = self.route(session, &deals)?;
        self.at(RefreshPoint::BeforePrepare)?;
        let prepared = join_all(self.t.cells.iter().zip(inboxes).map(|(c, envelopes)| {
            let body = PrepareRequest {
                session: session.to_owned(),
                envelopes,
            };
            let path = path("prepare");
            async move {
                c.call::<_, CheckResponse>(post(&path, &body, None, true))
                    .await
            }
        }))
        .await;
        let checks: Vec<Vec<u8>> = all_ok(prepared)?.into_iter().map(|c| c.check).collect();
        match &public {
            Some(public) => check_locally(uid, session, from, public, &checks),
            None => check_prf_locally(uid, session, &checks),
        }
        .map_err(Stop::CheckFailed)?;
        Ok(checks)
    }

    async fn finalize(&self, uid: &str, session: &str) -> Result<()> {
        let body = SessionRequest {
            session: session.to_owned(),
        };
        let path = format!("keys/{uid}/refresh/finalize");
        all_ok(self.all::<_, EpochResponse>(&path, &body).await)
            .map(drop)
            .map_err(|e| {
                device(format!(
                    "refresh {session} of key {uid} is committed but not finalized everywhere \
                     ({}); the next refresh finalizes it",
                    e.message
                ))
            })
    }

    /// Deliver each sealed delta to its receiver by its cleartext header; the cells
    /// authenticate everything, this only routes.
    fn route(&self, session: &str, deals: &[DealResponse]) -> Result<Vec<Vec<Vec<u8>>>> {
        let mut inboxes = vec![Vec::new(); self.names.len()];
        for (from, deal) in deals.iter().enumerate() {
            let name = &self.names[from];
            if deal.envelopes.len() + 1 != self.names.len() {
                return Err(device(format!(
                    "cell {name} dealt to the wrong number of peers"
                )));
            }
            for bytes in &deal.envelopes {
                let env = Envelope::from_bytes(bytes)
                    .map_err(|e| device(format!("cell {name} sent an unreadable envelope: {e}")))?;
                let h = env.header();
                let to = self
                    .names
                    .iter()
                    .position(|n| *n == h.receiver)
                    .filter(|&j| j != from && h.sender == *name && h.session_id == session)
                    .ok_or_else(|| device(format!("cell {name} sent a misaddressed envelope")))?;
                inboxes[to].push(bytes.clone());
            }
        }
        Ok(inboxes)
    }
}

/// The client's own check of a PRF key's run before COMMIT: F_old and F_new agree on the
/// run's hashed input (Σ old = Σ pending). The cells check it again, with the signatures and
/// the commitments' sum, before they commit.
fn check_prf_locally(uid: &str, session: &str, checks: &[Vec<u8>]) -> Result<()> {
    let parsed = checks
        .iter()
        .map(|bytes| {
            let env = Envelope::from_bytes(bytes).ok()?;
            PrfCheck::from_bytes(env.unverified_payload()?).ok()
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| device(format!("key {uid}: a cell sent a malformed refresh check")))?;
    if same_function(&parsed) {
        Ok(())
    } else {
        Err(device(format!(
            "refresh {session} of PRF key {uid} failed its check (the pending shares would not \
             form the same function); nothing was committed"
        )))
    }
}

/// The client's own check before COMMIT: the products under both epochs agree, and the
/// pending shares raise the check input to its e-th root squared (the cells hold the whole
/// exponent: there is no customer share yet). The cells check the products again, with the
/// signatures, before they commit.
fn check_locally(
    uid: &str,
    session: &str,
    from: u64,
    public: &RsaPublic,
    checks: &[Vec<u8>],
) -> Result<()> {
    let modulus = public.modulus();
    let parsed = checks
        .iter()
        .map(|bytes| {
            let env = Envelope::from_bytes(bytes).ok()?;
            CheckPartials::from_bytes(env.unverified_payload()?, modulus.len()).ok()
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| device(format!("key {uid}: a cell sent a malformed refresh check")))?;
    let x = check_input(&modulus, uid, session, from).map_err(|e| device(e.to_string()))?;
    let old: Vec<&[u8]> = parsed.iter().map(|c| c.old.as_slice()).collect();
    let pending: Vec<&[u8]> = parsed.iter().map(|c| c.pending.as_slice()).collect();
    let same = products_match(&modulus, &parsed).map_err(|e| device(e.to_string()))?;
    // The cells' shares alone form the key unless it has a customer share (DESIGN "Customer
    // fragment"), which no refresh touches and this PIN-less check cannot include: then the
    // old product does not form the key either, and `same` is the whole check.
    let cells_alone = product_matches_key(public, &x, &old).map_err(|e| device(e.to_string()))?;
    let keyed = !cells_alone
        || product_matches_key(public, &x, &pending).map_err(|e| device(e.to_string()))?;
    if same && keyed {
        Ok(())
    } else {
        Err(device(format!(
            "refresh {session} of key {uid} failed its check (the pending shares would not \
             form the same key); nothing was committed"
        )))
    }
}
