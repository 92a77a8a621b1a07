//! What a cell persists, behind traits so that SQLite (the embedded default) can later be joined
//! by a replicated backend. Every method is one atomic step: either all of it is durable when it
//! returns `Ok`, or none of it.
//!
//! Methods are synchronous; the HTTP layer calls them on the blocking pool (`AppState::db`).
//! Everything is scoped by the token id the caller's access key selected.

mod access_keys;
mod reseal;
mod sqlite;
mod sqlite_access;
mod sqlite_backup;
mod sqlite_customer;
mod sqlite_formats;
mod sqlite_keys;
mod sqlite_objects;
mod sqlite_pool;
mod sqlite_refresh;
mod sqlite_reseal;
mod sqlite_token;

pub use access_keys::{AccessKeyInfo, AccessKeyStore, AddKey, LiveAccessKey};
pub use reseal::{ResealStore, SealedRow};
pub use sqlite::{STORAGE_VERSION, SqliteStore};
pub use sqlite_backup::inspect_snapshot;
pub use sqlite_formats::ROW_FORMAT;

use keyfrag_proto::objects::{ObjectRecord, StageRequest, TxStatus};
use keyfrag_proto::token::UserKind;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// The backend failed; the text is for the log, not for clients.
    #[error("storage backend: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A PIN's persisted state: whether a verifier exists and how many tries failed since the last
/// success.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PinState {
    pub set: bool,
    pub failures: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenState {
    pub initialized: bool,
    pub label: String,
    pub so: PinState,
    pub user: PinState,
}

/// What a PIN try may proceed with.
#[derive(Clone, PartialEq, Eq)]
pub enum PinAttempt {
    NotSet,
    Locked,
    /// The try has been counted; verify against this verifier, then report success.
    Verify(String),
}

pub trait TokenStore {
    /// The token's state; a token never seen before is uninitialised.
    fn token_state(&self, token: &str) -> StoreResult<TokenState>;
    /// Count a try *before* the PIN is verified (as smart cards do), so that neither a crash
    /// mid-verification nor concurrent requests yield extra tries. A PIN with
    /// `max_failures` counted tries is locked.
    fn begin_pin_attempt(
        &self,
        token: &str,
        kind: UserKind,
        max_failures: u32,
    ) -> StoreResult<PinAttempt>;
    /// The PIN verified: reset its counter.
    fn pin_attempt_succeeded(&self, token: &str, kind: UserKind) -> StoreResult<()>;
    /// Replace a PIN verifier and reset its counter.
    fn set_pin(&self, token: &str, kind: UserKind, verifier: &str) -> StoreResult<()>;
    /// C_InitToken: in one transaction set the label, set the SO verifier if given, and delete
    /// every object, staged transaction, key, login and the user PIN. Fails with `Conflict` if
    /// the token's initialised state is no longer `was_initialized` (a concurrent init).
    fn init_token(
        &self,
        token: &str,
        was_initialized: bool,
        so_verifier: Option<&str>,
        label: &str,
    ) -> StoreResult<()>;
    /// Logins are stored as SHA-256 of the token handed out, never the token itself.
    fn add_login(&self, token: &str, login_hash: &[u8; 32], kind: UserKind) -> StoreResult<()>;
    fn login_kind(&self, token: &str, login_hash: &[u8; 32]) -> StoreResult<Option<UserKind>>;
    fn remove_login(&self, token: &str, login_hash: &[u8; 32]) -> StoreResult<()>;
    fn revoke_logins(&self, token: &str, kind: UserKind) -> StoreResult<()>;
}

/// The token label and committed objects, in id order.
#[derive(Clone, Debug, Default)]
pub struct Metadata {
    pub label: String,
    pub objects: Vec<ObjectRecord>,
}

pub trait ObjectStore {
    fn metadata(&self, token: &str) -> StoreResult<Metadata>;
    /// Record a staged transaction. The same txid with the same `content_hash` again is a
    /// no-op (also after commit); with a different one it is a `Conflict`.
    fn stage(&self, token: &str, stage: &StageRequest, content_hash: &[u8; 32]) -> StoreResult<()>;
    /// Apply a staged transaction's puts and deletes atomically and return the metadata after
    /// it. Committing a committed txid changes nothing; an unknown txid is `NotFound`.
    fn commit(&self, token: &str, txid: &str) -> StoreResult<Metadata>;
    /// Drop a staged transaction; `Conflict` once committed (it rolls forward, never back).
    fn abort(&self, token: &str, txid: &str) -> StoreResult<()>;
    /// Transactions staged and neither committed nor aborted, oldest first (at most `limit`).
    fn pending(&self, token: &str, limit: usize) -> StoreResult<Vec<String>>;
    /// What this cell knows of `txid`.
    fn tx_status(&self, token: &str, txid: &str) -> StoreResult<TxState>;
}

/// A transaction as one cell sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxState {
    pub status: TxStatus,
    /// Staged here long enough ago that no cell commits it any more.
    pub abandoned: bool,
}

/// One stored key fragment, sealed (see `sealing`): the key's public part and its committed
/// share (`epoch`, `format`, `sealed_share`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRow {
    pub uid: String,
    pub kind: String,
    pub bits: u32,
    pub modulus: Vec<u8>,
    pub public_exponent: Vec<u8>,
    pub epoch: u64,
    pub format: u32,
    pub sealed_share: Vec<u8>,
    /// Session keys only: the lease length, renewed on every use.
    pub lease_secs: Option<u64>,
    /// Unix seconds after which the key is gone (swept, and hidden before that).
    pub expires_at: Option<u64>,
    /// Waiting in the token's pool (`PoolStore`): no partials until claimed.
    pub pooled: bool,
}

/// A sealed share of a key at one epoch other than the committed one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareRow {
    pub epoch: u64,
    pub format: u32,
    pub sealed_share: Vec<u8>,
    /// The refresh run that produced it; None for a generated or imported share.
    pub session: Option<String>,
    /// The parties of that run (whose checks COMMIT needs); empty without a run.
    pub parties: Vec<String>,
    /// This cell's signed check in that run (public; re-issued to a recovering client).
    pub check: Option<Vec<u8>>,
}

/// A live key and every share it holds on this cell, read in one snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyShares {
    /// The public part and the committed share.
    pub key: KeyRow,
    /// The refresh run that produced the committed share; None for the first epoch.
    pub session: Option<String>,
    /// This cell's signed check in that run.
    pub check: Option<Vec<u8>>,
    /// The committed share of the epoch before, kept (and served) until FINALIZE.
    pub previous: Option<ShareRow>,
    /// The share a refresh prepared for the next epoch; never served before COMMIT.
    pub pending: Option<ShareRow>,
}

/// One token's live keys of one kind and lifetime (metrics; read at scrape time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyStat {
    pub token: String,
    pub kind: String,
    /// "token" (permanent), "session" (under a lease) or "pooled" (waiting in the pool).
    pub lifetime: &'static str,
    pub count: u64,
    pub min_epoch: u64,
    pub max_epoch: u64,
}

pub enum PutKeyOutcome {
    Inserted,
    /// A live key with this uid exists; the caller decides whether it is the same content.
    Exists(Box<KeyRow>),
}

pub trait KeyStore {
    /// Insert unless a live key has this uid (an expired one is replaced). The share becomes
    /// the committed share at `row.epoch`.
    fn put_key(&self, token: &str, row: &KeyRow, now: u64) -> StoreResult<PutKeyOutcome>;
    /// A live key; expired keys count as gone even before the sweeper deletes them.
    fn key(&self, token: &str, uid: &str, now: u64) -> StoreResult<Option<KeyRow>>;
    /// A live key with its previous and pending shares, in one snapshot.
    fn key_shares(&self, token: &str, uid: &str, now: u64) -> StoreResult<Option<KeyShares>>;
    /// Whether a key was deleted (with every share and refresh record it had).
    fn delete_key(&self, token: &str, uid: &str) -> StoreResult<bool>;
    fn keys(&self, token: &str, now: u64) -> StoreResult<Vec<KeyShares>>;
    /// Renew the leases of the live keys among `uids` that have one: to `lease_secs` if given,
    /// else to each key's own lease length. Returns the uids that are not live keys.
    fn renew_leases(
        &self,
        token: &str,
        uids: &[String],
        lease_secs: Option<u64>,
        now: u64,
    ) -> StoreResult<Vec<String>>;
    /// Drop the leases of the live keys among `uids`: they become token keys, never expired.
    /// Returns the uids that are not live keys.
    fn make_permanent(&self, token: &str, uids: &[String], now: u64) -> StoreResult<Vec<String>>;
    /// Delete every key whose lease expired at `now`; returns how many.
    fn sweep_expired(&self, now: u64) -> StoreResult<usize>;
    /// Counts and committed epoch ranges of the live keys, by token, kind and lifetime.
    fn key_stats(&self, now: u64) -> StoreResult<Vec<KeyStat>>;
    /// Replace the sealed share of `epoch` (committed, previous or pending) if it is still
    /// `old` (compare and swap); whether it was replaced. A PRF key fixes its commitments
    /// this way, at creation and at a refresh's COMMIT.
    fn replace_share(
        &self,
        token: &str,
        uid: &str,
        epoch: u64,
        old: &[u8],
        new: &[u8],
    ) -> StoreResult<bool>;
}

/// The steps of a refresh run on this cell (docs/REFRESH.md). Each is one transaction and
/// idempotent: repeating a step that already took effect succeeds without change.
pub trait RefreshStore {
    /// PREPARE: store `share` (sealed at `from_epoch + 1`) as the pending share of run
    /// `session`. Already pending or committed for this run: no change. `Conflict` if the
    /// key is no longer at `from_epoch`, another run is pending, the previous run is not
    /// finalized, or this run was aborted here; `NotFound` without the key.
    fn put_pending(
        &self,
        token: &str,
        uid: &str,
        from_epoch: u64,
        session: &str,
        share: &ShareRow,
        now: u64,
    ) -> StoreResult<()>;
    /// COMMIT: the pending share of `session` becomes the committed one; the committed one
    /// becomes the previous one. Returns the committed epoch. `Conflict` if this run is
    /// neither pending nor committed here.
    fn commit_pending(&self, token: &str, uid: &str, session: &str, now: u64) -> StoreResult<u64>;
    /// FINALIZE: delete the previous share once `session` is the committed run. Returns the
    /// committed epoch. `Conflict` if `session` did not commit here.
    fn finalize_refresh(&self, token: &str, uid: &str, session: &str, now: u64)
    -> StoreResult<u64>;
    /// ABORT: drop run `session`'s pending share, if any, and fence the run so this cell
    /// never prepares it. `Conflict` once this cell committed it, and — with
    /// `only_if_absent` — while it holds the run's pending share. A missing key is no error.
    fn abort_refresh(
        &self,
        token: &str,
        uid: &str,
        session: &str,
        from_epoch: u64,
        only_if_absent: bool,
        now: u64,
    ) -> StoreResult<()>;
    /// Whether run `session` was aborted on this cell.
    fn refresh_fenced(&self, token: &str, uid: &str, session: &str) -> StoreResult<bool>;
}

/// A key waiting in the pool: its public part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PooledKey {
    pub uid: String,
    pub bits: u32,
    pub modulus: Vec<u8>,
    pub public_exponent: Vec<u8>,
}

/// What a claim of a pooled key found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// It was in the pool and now is not: this caller owns it.
    Claimed,
    /// A live key that is not (or no longer) in the pool.
    NotPooled,
    /// No live key with this uid.
    Unknown,
}

/// The key pool (issue 4): keys generated ahead of time, stored with the pooled flag, handed
/// out by an atomic claim.
pub trait PoolStore {
    /// The live pooled keys of `token`, in uid order.
    fn pool(&self, token: &str, now: u64) -> StoreResult<Vec<PooledKey>>;
    /// Take a key out of the pool in one transaction, as a token key (`lease_secs` None) or
    /// a session key under that lease. Of concurrent claims of one key exactly one is
    /// `Claimed`.
    fn claim(
        &self,
        token: &str,
        uid: &str,
        lease_secs: Option<u64>,
        now: u64,
    ) -> StoreResult<ClaimOutcome>;
}

/// The customer's relay card pinned on a token (issue 4, docs/THREAT-MODEL.md): the only
/// party besides the cells a customer-mode generation of that token accepts. Written once.
pub trait CustomerCardStore {
    /// The pinned card (`PartyCard::to_bytes()`), if any.
    fn customer_card(&self, token: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Pin `card`: true if pinned now, false if exactly this card was pinned already;
    /// `Conflict` if another card is.
    fn pin_customer_card(&self, token: &str, card: &[u8], now: u64) -> StoreResult<bool>;
}

/// Backups (docs/OPERATIONS.md): a consistent copy of the whole store, and swapping the whole
/// store for one.
pub trait BackupStore {
    /// A path beside the database for a scratch file named by `tag` (same file system, so a
    /// restore can rename it over the database).
    fn scratch_path(&self, tag: &str) -> std::path::PathBuf;
    /// Write a consistent copy of the database to `path` (which must not exist).
    fn snapshot_to(&self, path: &std::path::Path) -> StoreResult<()>;
    /// Replace the database with the (checked) database file at `snapshot`, which is moved;
    /// requests wait for the swap and then see only the new database.
    fn replace_with(&self, snapshot: &std::path::Path) -> StoreResult<()>;
}

pub trait Store:
    TokenStore
    + ObjectStore
    + KeyStore
    + PoolStore
    + CustomerCardStore
    + RefreshStore
    + AccessKeyStore
    + ResealStore
    + BackupStore
    + Send
    + Sync
    + 'static
{
    fn storage_version(&self) -> u32;
    /// One cheap read, for readiness: the database is open and answers.
    fn storage_ping(&self) -> StoreResult<()>;
}
