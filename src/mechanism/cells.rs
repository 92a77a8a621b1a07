//! The private-key operation by fragments: blind, ask every cell for its partial (and, for a
//! key with a customer share, compute the customer's own partial meanwhile), combine, verify
//! (CRYPTO-NOTES §2.1–2.2). Cells never see the message representative.
//!
//! Every partial of one attempt is at one epoch; when a refresh moves the epoch under an
//! attempt, nothing is combined and the whole operation runs again, freshly blinded, at the
//! new epoch (docs/REFRESH.md "Epochs"). The customer's share has no epoch: refresh changes
//! only the cells' shares, keeping their sum.

use cryptoki_sys::*;
use keyfrag_client::cluster::MAX_EPOCH_ATTEMPTS;
use keyfrag_client::{Cluster, ErrorKind};
use keyfrag_core::rsa_combine;
use keyfrag_core::rsa_partial::rsa_partial;
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_core::rsa_share::RsaShare;
use keyfrag_core::secret::SecretBytes;

use super::PrivateKeyOp;
use crate::error::{Result, err};

/// An RSA private key whose exponent exists only as shares on `cluster`'s cells.
pub struct CellKey<'a> {
    pub cluster: &'a Cluster,
    pub uid: &'a str,
    pub public: &'a RsaPublic,
    /// The customer's share, when the key has one: its partial is computed here, in
    /// parallel with the cells'.
    pub customer: Option<RsaShare>,
}

impl PrivateKeyOp for CellKey<'_> {
    fn raw_private(&self, x: &[u8]) -> Result<SecretBytes> {
        for _ in 0..MAX_EPOCH_ATTEMPTS {
            let blinded = rsa_combine::blind(self.public, x).map_err(|e| match e {
                keyfrag_core::Error::DataTooLarge => err(CKR_DATA_LEN_RANGE),
                other => other.into(),
            })?;
            let partials = match partials_once(
                self.cluster,
                self.uid,
                self.public,
                &blinded.input,
                self.customer.as_ref(),
            ) {
                Ok(p) => p,
                Err(Attempt::EpochMoved(why)) => {
                    tracing::debug!(key = self.uid, "epoch moved: {why}");
                    continue;
                }
                Err(Attempt::Failed(e)) => return Err(e),
            };
            return self.combine(&blinded, &partials);
        }
        tracing::error!(
            key = self.uid,
            "the key's epoch kept moving under the operation"
        );
        Err(err(CKR_DEVICE_ERROR))
    }
}

impl CellKey<'_> {
    fn combine(&self, blinded: &rsa_combine::Blinded, partials: &[Vec<u8>]) -> Result<SecretBytes> {
        rsa_combine::combine(self.public, blinded, partials).map_err(|e| {
            tracing::error!(
                key = self.uid,
                error = %e,
                "combined RSA result rejected (a cell returned a wrong or malformed partial)"
            );
            err(CKR_DEVICE_ERROR)
        })
    }
}

/// Why one attempt produced no partials.
pub enum Attempt {
    /// A refresh moved the key's epoch: try again, freshly blinded.
    EpochMoved(String),
    Failed(crate::error::CkError),
}

/// One attempt at one epoch: every cell's partial of the blinded input `x` and, with a
/// customer share, the module's own x^(2c), computed on this thread while the cells work.
pub fn partials_once(
    cluster: &Cluster,
    uid: &str,
    public: &RsaPublic,
    x: &[u8],
    customer: Option<&RsaShare>,
) -> std::result::Result<Vec<Vec<u8>>, Attempt> {
    let cells = |cluster: &Cluster| match cluster.rsa_partials_once(uid, x) {
        Ok(p) => Ok(p.outputs()),
        Err(e) if e.kind == ErrorKind::EpochMoved => Err(Attempt::EpochMoved(e.message)),
        Err(e) => Err(Attempt::Failed(e.into())),
    };
    let Some(share) = customer else {
        return cells(cluster);
    };
    let modulus = public.modulus();
    std::thread::scope(|scope| {
        let from_cells = scope.spawn(|| cells(cluster));
        let own = rsa_partial(&modulus, x, share);
        let mut partials = match from_cells.join() {
            Ok(r) => r?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        partials.push(own.map_err(|e| {
            tracing::error!(key = uid, "customer partial failed: {e}");
            Attempt::Failed(err(CKR_DEVICE_ERROR))
        })?);
        Ok(partials)
    })
}

/// Every party's partial of `x`, retrying while refreshes move the epoch (`x` is random and
/// used only to check a key, so it need not be blinded afresh).
pub fn partials(
    cluster: &Cluster,
    uid: &str,
    public: &RsaPublic,
    x: &[u8],
    customer: Option<&RsaShare>,
) -> Result<Vec<Vec<u8>>> {
    for _ in 0..MAX_EPOCH_ATTEMPTS {
        match partials_once(cluster, uid, public, x, customer) {
            Ok(p) => return Ok(p),
            Err(Attempt::EpochMoved(why)) => tracing::debug!(key = uid, "epoch moved: {why}"),
            Err(Attempt::Failed(e)) => return Err(e),
        }
    }
    tracing::error!(key = uid, "the key's epoch kept moving while checking it");
    Err(err(CKR_DEVICE_ERROR))
}
