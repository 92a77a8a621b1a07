//! The cells' distributed PRF of one secret key, as the symmetric mechanisms see it
//! (`sym::Prf`): keyfrag-client's `Cluster::prf_evaluate` — blind, fan out, check every
//! cell's DLEQ proof, unblind, sum, finalize — and `Cluster::prf_create` for generation.

use std::sync::Arc;

use cryptoki_sys::*;
use keyfrag_client::Cluster;
use zeroize::Zeroizing;

use super::sym::Prf;
use crate::error::{Result, err};

/// One key's PRF on the cells.
pub struct CellPrf {
    pub cluster: Arc<Cluster>,
    pub uid: String,
}

impl Prf for CellPrf {
    fn evaluate(&self, _input: &[u8]) -> Result<Zeroizing<[u8; 64]>> {
        tracing::debug!(
            uid = %self.uid,
            cells = self.cluster.cell_count(),
            "PRF evaluation asked"
        );
        unavailable()
    }
}

/// Have every cell sample its share of a new PRF key `uid` (all or nothing).
pub fn create(_cluster: &Cluster, _uid: &str, _lease_secs: Option<u64>) -> Result<()> {
    unavailable()
}

/// Until keyfrag-client offers the PRF (issue 9, the cells' half), secret keys cannot be
/// generated or used: refused, never faked.
fn unavailable<T>() -> Result<T> {
    tracing::warn!("the cells' PRF is not available in this build");
    Err(err(CKR_FUNCTION_NOT_SUPPORTED))
}
