//! The module's state: one per process, behind one RwLock; a Mutex per session so sessions
//! run in parallel; login state token-wide (per slot); handles never reused.
//!
//! Fork safety (COMPAT item 9): the state records the pid that initialised it. In a child
//! every call behaves as not initialised, and C_Initialize installs a fresh state, leaking
//! (never dropping) the parent's: its runtimes, connections and locks belong to the parent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use cryptoki_sys::*;
use keyfrag_client::{Cluster, TokenConfig, TokenStatus, UserKind};

use crate::customer::CustomerFragment;
use crate::data_key::DataKeyCache;
use crate::error::{Result, err};
use crate::ffi::LeakCell;
use crate::mechanism::digest::DigestOp;
use crate::mechanism::sym::{Bytes, SymCipher};
use crate::mechanism::{Decrypt, Encrypt, Policy, Sign, Verify};
use crate::object::{Object, ObjectStore};

/// The per-process root: the pid it belongs to and the state (None when not initialised).
pub struct Global {
    pub pid: u32,
    pub state: RwLock<Option<State>>,
}

static GLOBAL: LeakCell<Global> = LeakCell::new();

/// Handles (sessions and objects) come from one counter that never goes back, across
/// C_Finalize/C_Initialize too.
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

pub fn next_handle() -> CK_ULONG {
    NEXT_HANDLE.fetch_add(1, Ordering::Relaxed) as CK_ULONG
}

/// Lock ignoring poison: a panic inside an entry point is already reported as
/// CKR_GENERAL_ERROR; the data it guarded stays usable.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

pub fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// This process's Global, if it has one.
pub fn global() -> Option<&'static Global> {
    GLOBAL.get().filter(|g| g.pid == std::process::id())
}

/// This process's Global, creating it (and forgetting a parent's) if needed.
pub fn global_for_init() -> &'static Global {
    let pid = std::process::id();
    GLOBAL.get_or_replace(
        |g| g.pid == pid,
        || Global {
            pid,
            state: RwLock::new(None),
        },
    )
}

/// What a session function checks before reading its other arguments, so that a call
/// before C_Initialize or on a stale handle says so whatever else is wrong with it.
pub fn check_session(h: CK_SESSION_HANDLE) -> Result<()> {
    with_state(|st| st.session(h).map(|_| ()))
}

/// Run `f` on the initialised state (CKR_CRYPTOKI_NOT_INITIALIZED otherwise).
pub fn with_state<T>(f: impl FnOnce(&State) -> Result<T>) -> Result<T> {
    let g = global().ok_or(err(CKR_CRYPTOKI_NOT_INITIALIZED))?;
    let guard = read(&g.state);
    let st = guard.as_ref().ok_or(err(CKR_CRYPTOKI_NOT_INITIALIZED))?;
    f(st)
}

pub struct State {
    pub slots: Vec<Arc<Slot>>,
    pub sessions: RwLock<HashMap<CK_SESSION_HANDLE, Arc<Session>>>,
    /// False under CKF_LIBRARY_CANT_CREATE_OS_THREADS: leases are then renewed inline.
    pub threads_allowed: bool,
    /// Dropping the sender stops the lease renewal thread.
    pub renewer: Mutex<Option<mpsc::Sender<()>>>,
}

impl State {
    pub fn new(slots: Vec<Arc<Slot>>, threads_allowed: bool) -> State {
        State {
            slots,
            sessions: RwLock::new(HashMap::new()),
            threads_allowed,
            renewer: Mutex::new(None),
        }
    }

    pub fn slot(&self, id: CK_SLOT_ID) -> Result<&Arc<Slot>> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.slots.get(i))
            .ok_or(err(CKR_SLOT_ID_INVALID))
    }

    pub fn session(&self, h: CK_SESSION_HANDLE) -> Result<Arc<Session>> {
        read(&self.sessions)
            .get(&h)
            .cloned()
            .ok_or(err(CKR_SESSION_HANDLE_INVALID))
    }

    /// The session and its slot.
    pub fn session_slot(&self, h: CK_SESSION_HANDLE) -> Result<(Arc<Session>, &Arc<Slot>)> {
        let s = self.session(h)?;
        let slot = self.slot(s.slot)?;
        Ok((s, slot))
    }

    pub fn sessions_on(&self, slot: CK_SLOT_ID) -> Vec<Arc<Session>> {
        read(&self.sessions)
            .values()
            .filter(|s| s.slot == slot)
            .cloned()
            .collect()
    }

    /// Renew this process's session-key leases every lease/3 (COMPAT item 10: not when the
    /// application forbids threads; see `Slot::renew_inline_if_due`).
    pub fn ensure_renewer(&self) {
        if !self.threads_allowed {
            return;
        }
        let mut r = lock(&self.renewer);
        if r.is_some() {
            return;
        }
        let (tx, rx) = mpsc::channel::<()>();
        let slots = self.slots.clone();
        let every = slots
            .iter()
            .map(|s| s.lease_secs() / 3)
            .min()
            .unwrap_or(200)
            .max(1);
        let spawned = std::thread::Builder::new()
            .name("keyfrag-lease".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    rx.recv_timeout(Duration::from_secs(every))
                {
                    for s in &slots {
                        s.renew_leases();
                    }
                }
            });
        match spawned {
            Ok(_) => *r = Some(tx),
            Err(e) => tracing::warn!("cannot start the lease renewal thread: {e}"),
        }
    }
}

/// Cached token status, so that slot and token info keep answering when a cell is down.
#[derive(Default)]
pub struct StatusCache {
    pub last: Option<TokenStatus>,
    pub fetched: Option<Instant>,
}

/// How long a token status is fresh enough for C_GetTokenInfo.
const STATUS_FRESH: Duration = Duration::from_secs(1);

/// One slot = one configured token.
pub struct Slot {
    pub id: CK_SLOT_ID,
    pub config: TokenConfig,
    pub cluster: Arc<Cluster>,
    pub policy: Policy,
    /// Token-wide login state.
    pub login: Mutex<Option<UserKind>>,
    pub status: Mutex<StatusCache>,
    pub objects: Mutex<ObjectStore>,
    pub last_renewal: Mutex<Instant>,
    /// The customer's seed while the user is logged in (if the token names a file).
    pub customer: CustomerFragment,
    /// Derived data keys of secret keys, when the token configures a TTL.
    pub data_keys: DataKeyCache,
}

impl Slot {
    pub fn new(id: CK_SLOT_ID, config: TokenConfig, cluster: Cluster) -> Slot {
        let policy = Policy {
            allow_raw_rsa: config.allow_raw_rsa,
            allow_rsa_1024: config.allow_rsa_1024,
            // A token with a customer fragment generates in customer mode (the module the
            // customer party), so generation is offered everywhere.
            key_pair_generation: true,
        };
        let customer = CustomerFragment::new(config.customer_fragment.as_deref());
        let data_keys = DataKeyCache::new(config.data_key_cache_secs);
        Slot {
            id,
            config,
            cluster: Arc::new(cluster),
            policy,
            login: Mutex::new(None),
            status: Mutex::new(StatusCache::default()),
            objects: Mutex::new(ObjectStore::default()),
            last_renewal: Mutex::new(Instant::now()),
            customer,
            data_keys,
        }
    }

    pub fn lease_secs(&self) -> u64 {
        self.config.session_key_lease_secs.max(3)
    }

    pub fn logged_in(&self) -> Option<UserKind> {
        *lock(&self.login)
    }

    pub fn user_logged_in(&self) -> bool {
        self.logged_in() == Some(UserKind::User)
    }

    /// The token status: fresh from the cells, else the last one seen (logged), else None.
    pub fn token_status(&self) -> Option<TokenStatus> {
        {
            let c = lock(&self.status);
            if let (Some(s), Some(t)) = (&c.last, c.fetched)
                && t.elapsed() < STATUS_FRESH
            {
                return Some(s.clone());
            }
        }
        match self.cluster.token_status() {
            Ok(s) => {
                let mut c = lock(&self.status);
                c.last = Some(s.clone());
                c.fetched = Some(Instant::now());
                Some(s)
            }
            Err(e) => {
                tracing::warn!(
                    slot = self.id,
                    "token status unavailable, answering from cache: {}",
                    e.message
                );
                lock(&self.status).last.clone()
            }
        }
    }

    /// Forget the cached status (after C_InitToken, C_Login, C_SetPIN…).
    pub fn invalidate_status(&self) {
        lock(&self.status).fetched = None;
    }

    /// Refresh the token-object cache when the cells report a different metadata hash. If the
    /// cells are unreachable, a loaded cache keeps serving (logged); none → CKR_DEVICE_ERROR.
    pub fn refresh_objects(&self) -> Result<()> {
        let status = self.cluster.token_status();
        let (loaded, cached_hash) = {
            let s = lock(&self.objects);
            (s.loaded, s.hash.clone())
        };
        match status {
            Ok(st) => {
                {
                    let mut c = lock(&self.status);
                    c.last = Some(st.clone());
                    c.fetched = Some(Instant::now());
                }
                if loaded && cached_hash.as_deref() == Some(st.metadata_hash.as_str()) {
                    return Ok(());
                }
                let (hash, records) = self.cluster.load_objects()?;
                lock(&self.objects).set_token_objects(hash, &records, next_handle);
                Ok(())
            }
            Err(e) if loaded => {
                tracing::warn!(
                    slot = self.id,
                    "cells unreachable, using cached token objects: {}",
                    e.message
                );
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Renew the leases of this process's session keys on this slot.
    pub fn renew_leases(&self) {
        let uids = lock(&self.objects).leased_uids();
        *lock(&self.last_renewal) = Instant::now();
        if uids.is_empty() {
            return;
        }
        if let Err(e) = self.cluster.renew_leases(&uids, self.lease_secs()) {
            tracing::warn!(
                slot = self.id,
                "session key lease renewal failed: {}",
                e.message
            );
        }
    }

    /// Without a renewal thread, renew on use once a third of the lease has passed.
    pub fn renew_inline_if_due(&self) {
        let due = lock(&self.last_renewal).elapsed() >= Duration::from_secs(self.lease_secs() / 3);
        if due {
            self.renew_leases();
        }
    }

    /// An object visible to this application's sessions (private objects need a user login).
    pub fn visible_object(&self, h: CK_OBJECT_HANDLE) -> Result<Arc<Object>> {
        let o = lock(&self.objects)
            .get(h)
            .ok_or(err(CKR_OBJECT_HANDLE_INVALID))?;
        if o.is_private() && !self.user_logged_in() {
            return Err(err(CKR_OBJECT_HANDLE_INVALID));
        }
        Ok(o)
    }
}

/// A signing or decryption key in use, with the state of the operation.
pub struct SignState {
    pub op: Box<dyn Sign>,
    pub key: Arc<Object>,
    /// C_SignUpdate was called: C_Sign is no longer allowed.
    pub updated: bool,
    /// CKA_ALWAYS_AUTHENTICATE: a CKU_CONTEXT_SPECIFIC login is due before the operation.
    pub needs_auth: bool,
}

pub struct VerifyState {
    pub op: Box<dyn Verify>,
    pub updated: bool,
}

/// A symmetric encryption or decryption (data key inside the operation).
pub struct SymState {
    pub op: Box<dyn SymCipher>,
    /// C_*Update was called: the single-part call is no longer allowed.
    pub updated: bool,
    /// Output computed for a call whose buffer was too small (or a length query), kept for
    /// the call's repetition: the operation cannot be run twice on the same input.
    pub pending: Option<Bytes>,
}

impl SymState {
    pub fn new(op: Box<dyn SymCipher>) -> SymState {
        SymState {
            op,
            updated: false,
            pending: None,
        }
    }
}

pub enum EncryptState {
    Rsa(Box<dyn Encrypt>),
    Sym(SymState),
}

pub enum DecryptState {
    Rsa(RsaDecrypt),
    Sym(SymState),
}

pub struct RsaDecrypt {
    pub op: Box<dyn Decrypt>,
    pub key: Arc<Object>,
    pub needs_auth: bool,
    /// A plaintext computed for a too-small buffer, kept for the second call.
    pub pending: Option<keyfrag_core::secret::SecretBytes>,
}

pub struct FindState {
    pub handles: Vec<CK_OBJECT_HANDLE>,
    pub pos: usize,
}

/// A session's active operations (one of each kind at a time).
#[derive(Default)]
pub struct Ops {
    pub find: Option<FindState>,
    pub sign: Option<SignState>,
    pub verify: Option<VerifyState>,
    pub encrypt: Option<EncryptState>,
    pub decrypt: Option<DecryptState>,
    pub digest: Option<DigestOp>,
}

pub struct Session {
    pub handle: CK_SESSION_HANDLE,
    pub slot: CK_SLOT_ID,
    pub rw: bool,
    pub ops: Mutex<Ops>,
    /// The cancel flag of the key generation running on this session, if any. Kept apart
    /// from `ops`: a generation takes seconds and holds no session lock, so C_SessionCancel
    /// (from another thread) and the session's other calls never wait behind it.
    pub keygen: Mutex<Option<Arc<AtomicBool>>>,
}

impl Session {
    pub fn new(handle: CK_SESSION_HANDLE, slot: CK_SLOT_ID, rw: bool) -> Session {
        Session {
            handle,
            slot,
            rw,
            ops: Mutex::new(Ops::default()),
            keygen: Mutex::new(None),
        }
    }

    pub fn ops(&self) -> MutexGuard<'_, Ops> {
        lock(&self.ops)
    }

    /// Register a key generation on this session: its cancel flag, or CKR_OPERATION_ACTIVE
    /// when one is already running (one flag per session, so C_SessionCancel is unambiguous).
    pub fn start_keygen(&self) -> Result<Arc<AtomicBool>> {
        let mut g = lock(&self.keygen);
        if g.is_some() {
            return Err(err(CKR_OPERATION_ACTIVE));
        }
        let flag = Arc::new(AtomicBool::new(false));
        *g = Some(flag.clone());
        Ok(flag)
    }

    /// The generation is over (whatever its outcome).
    pub fn end_keygen(&self) {
        lock(&self.keygen).take();
    }

    /// Ask a running generation to stop (the client polls the flag between rounds). A no-op
    /// when none runs: a cancel must never pre-empt the next generation.
    pub fn cancel_keygen(&self) {
        if let Some(flag) = lock(&self.keygen).as_ref() {
            flag.store(true, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_never_repeat() {
        let a = next_handle();
        let b = next_handle();
        assert!(b > a && a > 0);
    }

    #[test]
    fn global_is_per_process() {
        let g = global_for_init();
        assert_eq!(g.pid, std::process::id());
        assert!(std::ptr::eq(g, global_for_init()));
        assert!(std::ptr::eq(global().unwrap(), g));
    }
}
