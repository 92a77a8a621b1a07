//! The private-key operation by fragments: blind, ask every cell for its partial (and, for a
//! key with a customer share, compute the customer's own partial meanwhile), combine, verify
//! (CRYPTO-NOTES §2.1–2.2). Cells never see the message representative.
//!
//! Only the multiplication x·ρ^e stands before the fan-out: the blinding pair comes from the
//! key's pool (made while an earlier operation waited), and the inverse of the blinded input
//! — public, so variable time — is computed while the cells work, as is the next pair.
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

use super::{PrivateKeyOp, blinding_pools};
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
        let pool = blinding_pools::for_key(self.public);
        for _ in 0..MAX_EPOCH_ATTEMPTS {
            let pair = pool.take()?;
            let blinded = rsa_combine::blind_with(self.public, x, pair).map_err(|e| match e {
                keyfrag_core::Error::DataTooLarge => err(CKR_DATA_LEN_RANGE),
                other => other.into(),
            })?;
            // While the cells work: x'⁻¹ (public, variable time) and the next operation's
            // blinding pair.
            let beside = || {
                let inverse = rsa_combine::input_inverse(self.public, &blinded.input);
                if let Err(e) = pool.refill(1) {
                    tracing::warn!("cannot make a blinding pair in advance: {e}");
                }
                inverse
            };
            let (partials, inverse) = match partials_once_beside(
                self.cluster,
                self.uid,
                self.public,
                &blinded.input,
                self.customer.as_ref(),
                beside,
            ) {
                Ok(p) => p,
                Err(Attempt::EpochMoved(why)) => {
                    tracing::debug!(key = self.uid, "epoch moved: {why}");
                    continue;
                }
                Err(Attempt::Failed(e)) => return Err(e),
            };
            return self.combine(&blinded, &partials, inverse);
        }
        tracing::error!(
            key = self.uid,
            "the key's epoch kept moving under the operation"
        );
        Err(err(CKR_DEVICE_ERROR))
    }
}

impl CellKey<'_> {
    fn combine(
        &self,
        blinded: &rsa_combine::Blinded,
        partials: &[Vec<u8>],
        inverse: keyfrag_core::Result<rsa_combine::InputInverse>,
    ) -> Result<SecretBytes> {
        inverse
            .and_then(|inv| rsa_combine::combine_with_inverse(self.public, blinded, partials, &inv))
            .map_err(|e| {
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
    partials_once_beside(cluster, uid, public, x, customer, || ()).map(|(p, ())| p)
}

/// `partials_once`, also running `beside` on this thread while the cells work.
pub fn partials_once_beside<R: Send>(
    cluster: &Cluster,
    uid: &str,
    public: &RsaPublic,
    x: &[u8],
    customer: Option<&RsaShare>,
    beside: impl FnOnce() -> R + Send,
) -> std::result::Result<(Vec<Vec<u8>>, R), Attempt> {
    let own_work = || {
        let own = customer.map(|share| rsa_partial(&public.modulus(), x, share));
        (own, beside())
    };
    let (cells, (own, side)) = match cluster.rsa_partials_once_beside(uid, x, own_work) {
        Ok(p) => p,
        Err(e) if e.kind == ErrorKind::EpochMoved => return Err(Attempt::EpochMoved(e.message)),
        Err(e) => return Err(Attempt::Failed(e.into())),
    };
    let mut partials = cells.outputs();
    if let Some(own) = own {
        partials.push(own.map_err(|e| {
            tracing::error!(key = uid, "customer partial failed: {e}");
            Attempt::Failed(err(CKR_DEVICE_ERROR))
        })?);
    }
    Ok((partials, side))
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
