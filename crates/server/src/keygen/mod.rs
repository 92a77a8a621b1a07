//! Key generation sessions on a cell (DESIGN.md "RSA generation", "Sealed relay").
//!
//! Sessions live in memory only, keyed by (token, session id): a cell restart therefore
//! aborts every generation in progress, and since a share is written to the store only at
//! commit — after every party's transcript hash matched — nothing is left behind ("no
//! orphan shares"). A session idle for longer than `IDLE_LIMIT` is dropped by the sweeper.

mod idle;
mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use keyfrag_proto::ErrorCode;

use crate::audit;
use crate::error::{ApiError, ApiResult};

pub use idle::{MAX_READY, precompute_while_idle};
pub use session::{Session, StartParams, keygen_params};

/// A session with no request for this long is dropped (its client is gone or stuck).
pub const IDLE_LIMIT: Duration = Duration::from_secs(120);
/// Generations one cell runs at once: each holds a party's state (a batch of candidates,
/// several MB at 4096 bits), so an unbounded number would let a caller exhaust memory.
pub const MAX_SESSIONS: usize = 64;

/// One session and when it was last used. The sweeper reads `touched` without taking the
/// session lock, which a step holds for the whole of its compute.
pub struct Slot {
    session: Mutex<Session>,
    touched_ms: AtomicU64,
    key_uid: String,
    /// Requests waiting for the session lock: idle-time work yields to them.
    waiting: AtomicUsize,
    /// An idle-time task runs on this session.
    precomputing: AtomicBool,
}

impl Slot {
    /// The session, for one request. Call on the blocking pool: a step computes under it.
    pub fn lock(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session for a request: idle-time work stops at its next chunk instead of making
    /// the request wait for more.
    pub fn lock_for_request(&self) -> MutexGuard<'_, Session> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let guard = self.lock();
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        guard
    }
}

/// Every session of this cell.
pub struct Sessions {
    epoch: Instant,
    map: Mutex<HashMap<(String, String), Arc<Slot>>>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            epoch: Instant::now(),
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("count", &self.map().len())
            .finish()
    }
}

fn no_session(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no key generation session {id} (it finished, was aborted, expired, or the cell \
         restarted)"
    ))
}

impl Sessions {
    fn map(&self) -> MutexGuard<'_, HashMap<(String, String), Arc<Slot>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Refuses a session id already in use and more than `MAX_SESSIONS` at once.
    pub fn insert(&self, token: &str, id: &str, session: Session) -> ApiResult<()> {
        let mut map = self.map();
        if map.len() >= MAX_SESSIONS {
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                format!("{MAX_SESSIONS} key generations are already running on this cell"),
            ));
        }
        let key = (token.to_owned(), id.to_owned());
        if map.contains_key(&key) {
            return Err(ApiError::conflict(format!(
                "key generation session {id} already exists"
            )));
        }
        // Two generations racing for one uid: the loser's clean-up (DELETE of the uid)
        // would remove the winner's key, so the second is refused up front.
        if map
            .iter()
            .any(|((t, _), slot)| t == token && slot.key_uid == session.key_uid())
        {
            return Err(ApiError::conflict(format!(
                "key {} is already being generated",
                session.key_uid()
            )));
        }
        let slot = Slot {
            key_uid: session.key_uid().to_owned(),
            session: Mutex::new(session),
            touched_ms: AtomicU64::new(self.now_ms()),
            waiting: AtomicUsize::new(0),
            precomputing: AtomicBool::new(false),
        };
        map.insert(key, Arc::new(slot));
        Ok(())
    }

    /// The session, marked as used now.
    pub fn get(&self, token: &str, id: &str) -> ApiResult<Arc<Slot>> {
        let slot = self
            .map()
            .get(&(token.to_owned(), id.to_owned()))
            .cloned()
            .ok_or_else(|| no_session(id))?;
        self.touch(&slot);
        Ok(slot)
    }

    /// Marks a slot as used now (also after a long step, so its compute does not count as
    /// idle time).
    pub fn touch(&self, slot: &Slot) {
        slot.touched_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Forget a session (abort); a step still computing on it finishes into the void.
    pub fn remove(&self, token: &str, id: &str) -> Option<Arc<Slot>> {
        self.map().remove(&(token.to_owned(), id.to_owned()))
    }

    /// Drop sessions idle for longer than `idle`; returns how many.
    pub fn sweep(&self, idle: Duration) -> usize {
        let cutoff = self.now_ms().saturating_sub(idle.as_millis() as u64);
        let mut map = self.map();
        let before = map.len();
        map.retain(|(token, _), slot| {
            let keep = slot.touched_ms.load(Ordering::Relaxed) >= cutoff;
            if !keep {
                audit::record(token, &slot.key_uid, "rsa-keygen", "expired");
            }
            keep
        });
        before - map.len()
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
