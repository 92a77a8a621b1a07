//! Re-sealing every stored share under a new master key (rotation.rs), a batch at a time.

use super::StoreResult;

/// One sealed share row.
#[derive(Clone, Debug)]
pub struct SealedRow {
    pub token: String,
    pub uid: String,
    pub epoch: u64,
    pub format: u32,
    pub sealed: Vec<u8>,
}

pub trait ResealStore {
    /// Up to `limit` share rows (committed and pending) not yet sealed under `key_id`.
    fn shares_to_reseal(&self, key_id: &[u8], limit: usize) -> StoreResult<Vec<SealedRow>>;
    /// In one transaction, replace each row's sealed share, if it still holds the old one
    /// (a row a refresh or delete changed meanwhile is left alone). Returns how many changed.
    fn replace_sealed(&self, rows: &[(SealedRow, u32, Vec<u8>)]) -> StoreResult<usize>;
}
