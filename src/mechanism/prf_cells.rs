//! The cells' distributed PRF of one secret key, as the symmetric mechanisms see it
//! (`sym::Prf`): keyfrag-client's `Cluster::prf_evaluate` — hash to group, blind, fan out,
//! check every cell's DLEQ proof against its commitment, unblind, sum (with the customer's
//! share when the key has one), finalize — and `Cluster::prf_create` for generation.

use std::sync::Arc;

use keyfrag_client::Cluster;
use keyfrag_core::dprf::PrfShare;
use zeroize::Zeroizing;

use super::sym::Prf;
use crate::error::Result;

/// One key's PRF on the cells.
pub struct CellPrf {
    pub cluster: Arc<Cluster>,
    pub uid: String,
    /// The customer's share, for a key made under a customer fragment.
    pub customer: Option<PrfShare>,
}

impl Prf for CellPrf {
    fn evaluate(&self, input: &[u8]) -> Result<Zeroizing<[u8; 64]>> {
        self.cluster
            .prf_evaluate(&self.uid, input, self.customer.as_ref())
            .map_err(|e| {
                tracing::warn!(kind = ?e.kind, "PRF evaluation on the cells failed: {}", e.message);
                e.into()
            })
    }
}

/// Have every cell sample its share of a new PRF key `uid` (all or nothing).
pub fn create(cluster: &Cluster, uid: &str, lease_secs: Option<u64>) -> Result<()> {
    cluster.prf_create(uid, lease_secs).map(|_| ()).map_err(|e| {
        tracing::warn!(kind = ?e.kind, "secret key generation on the cells failed: {}", e.message);
        e.into()
    })
}
