//! Proactive refresh on a cell (DESIGN.md "Refresh", docs/REFRESH.md): one cell's part in a
//! run that takes a key from committed epoch e to e + 1, relayed by a client that only
//! carries envelopes.
//!
//! - DEAL: fresh zero-sum deltas (`keyfrag_core::refresh::Deal`), each sealed to its peer
//!   under (Refresh, key, session, epoch e, round 0). The deal lives in memory only (`Deals`):
//!   a restart or an idle minute loses it, and since nothing was stored nothing is lost.
//! - PREPARE: open one delta from every peer, add them and the own delta to the committed
//!   share, store the result sealed at e + 1 as pending, and answer with the check.
//! - CHECK: a broadcast signed by this cell, holding its partials on the run's hashed input
//!   under the committed and the pending share (round 1). Stored with the pending share and
//!   re-issued on demand, also after the share it came from is finalized away.
//! - COMMIT: only with every party's check, validly signed, and Π old = Π pending.
//! - FINALIZE: the previous share is deleted; ABORT: the pending share is, and the run fenced.
//!
//! Session keys (with a lease) are not refreshed: they live for a process's sessions only,
//! and the sweeper may delete them mid-run.

mod prf;
mod steps;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use keyfrag_core::dprf::refresh::PrfDeal;
use keyfrag_core::refresh::Deal;
use keyfrag_core::secret::SecretBytes;

pub use steps::{abort, check, commit, deal, finalize, prepare};

/// A deal no PREPARE has picked up for this long is dropped (its client is gone).
pub const IDLE_LIMIT: Duration = Duration::from_secs(120);
/// Deals held at once (one per key at most; each is a few hundred bytes).
pub const MAX_DEALS: usize = 16384;
/// Round of the sealed deltas and of the signed checks within a run's relay context.
pub const ROUND_DEAL: u32 = 0;
pub const ROUND_CHECK: u32 = 1;

/// A deal of the key's kind: integer deltas for an RSA share, deltas mod ℓ for a PRF share.
pub(crate) enum KindDeal {
    Rsa(Deal),
    Prf(PrfDeal),
}

impl KindDeal {
    /// The encoded delta for each peer, by party index.
    pub(crate) fn peers(&self) -> Vec<(usize, &SecretBytes)> {
        match self {
            KindDeal::Rsa(d) => d.peers().collect(),
            KindDeal::Prf(d) => d.peers().collect(),
        }
    }
}

/// One cell's deal in one run, waiting for PREPARE.
pub(crate) struct DealSlot {
    pub(crate) session: String,
    pub(crate) from_epoch: u64,
    pub(crate) parties: Vec<String>,
    pub(crate) deal: KindDeal,
    /// The envelopes sent, so a repeated DEAL gets the same answer.
    pub(crate) envelopes: Vec<Vec<u8>>,
    touched: Instant,
}

impl DealSlot {
    pub(crate) fn new(
        session: &str,
        from_epoch: u64,
        parties: Vec<String>,
        deal: KindDeal,
        envelopes: Vec<Vec<u8>>,
    ) -> DealSlot {
        DealSlot {
            session: session.to_owned(),
            from_epoch,
            parties,
            deal,
            envelopes,
            touched: Instant::now(),
        }
    }
}

/// The deals of this cell, by (token, key uid): a new run's deal replaces an older one for
/// the same key (that run can then never prepare here, so it can never commit anywhere).
#[derive(Default)]
pub struct Deals {
    map: Mutex<HashMap<(String, String), DealSlot>>,
}

impl std::fmt::Debug for Deals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deals")
            .field("count", &self.lock().len())
            .finish()
    }
}

impl Deals {
    fn lock(&self) -> MutexGuard<'_, HashMap<(String, String), DealSlot>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The envelopes of the deal for (token, uid) if it belongs to `session` with these
    /// parameters (a repeated DEAL).
    pub(crate) fn repeat(
        &self,
        token: &str,
        uid: &str,
        session: &str,
        from_epoch: u64,
        parties: &[String],
    ) -> Option<Vec<Vec<u8>>> {
        let mut map = self.lock();
        let slot = map.get_mut(&(token.to_owned(), uid.to_owned()))?;
        if slot.session != session || slot.from_epoch != from_epoch || slot.parties != parties {
            return None;
        }
        slot.touched = Instant::now();
        Some(slot.envelopes.clone())
    }

    /// Hold `slot` for (token, uid), replacing any older deal for the key. False when the
    /// cell already holds `MAX_DEALS`.
    pub(crate) fn insert(&self, token: &str, uid: &str, slot: DealSlot) -> bool {
        let mut map = self.lock();
        let key = (token.to_owned(), uid.to_owned());
        if map.len() >= MAX_DEALS && !map.contains_key(&key) {
            return false;
        }
        map.insert(key, slot);
        true
    }

    /// Take the deal of `session` for (token, uid) out (PREPARE consumes it).
    pub(crate) fn take(&self, token: &str, uid: &str, session: &str) -> Option<DealSlot> {
        let mut map = self.lock();
        let key = (token.to_owned(), uid.to_owned());
        if map.get(&key).is_some_and(|s| s.session == session) {
            map.remove(&key)
        } else {
            None
        }
    }

    /// Drop deals idle for longer than `idle`; returns how many.
    pub fn sweep(&self, idle: Duration) -> usize {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, slot| slot.touched.elapsed() <= idle);
        before - map.len()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
