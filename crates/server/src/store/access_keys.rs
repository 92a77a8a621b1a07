//! Tokens the operator created and the access keys issued for them (`/v1/admin`). The cell
//! stores only the SHA-256 of an access key. Tokens declared in the cell config keep working
//! beside these (a bootstrap: `keyfrag dev up`, tests).

use super::StoreResult;

/// One issued access key, as the operator lists it (never the key, never its hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKeyInfo {
    pub name: String,
    pub created_at: u64,
    /// Coarse: updated at most once a minute per key.
    pub last_used: Option<u64>,
    pub revoked_at: Option<u64>,
}

/// A key the auth middleware accepts.
#[derive(Clone, Debug)]
pub struct LiveAccessKey {
    pub token: String,
    pub name: String,
    pub hash: [u8; 32],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddKey {
    Added,
    /// The same name with the same hash, not revoked: a retried issue.
    AlreadyThere,
    /// The name is taken by another key (live or revoked).
    NameTaken,
}

pub trait AccessKeyStore {
    /// Record that the operator created `token`; false if it already was.
    fn create_token(&self, token: &str, now: u64) -> StoreResult<bool>;
    /// Undo `create_token` (a failed creation elsewhere): only a token with no access key,
    /// no object and no key is removed, with its PIN state. True when removed.
    fn remove_new_token(&self, token: &str) -> StoreResult<bool>;
    fn operator_tokens(&self) -> StoreResult<Vec<String>>;
    fn add_access_key(
        &self,
        token: &str,
        name: &str,
        hash: &[u8; 32],
        now: u64,
    ) -> StoreResult<AddKey>;
    /// Undo `add_access_key`: deletes the row only if it holds this hash.
    fn remove_access_key(&self, token: &str, name: &str, hash: &[u8; 32]) -> StoreResult<bool>;
    /// True when a live key was revoked now.
    fn revoke_access_key(&self, token: &str, name: &str, now: u64) -> StoreResult<bool>;
    fn access_keys(&self, token: &str) -> StoreResult<Vec<AccessKeyInfo>>;
    fn live_access_keys(&self) -> StoreResult<Vec<LiveAccessKey>>;
    fn touch_access_key(&self, hash: &[u8; 32], now: u64) -> StoreResult<()>;
}
