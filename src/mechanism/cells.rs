//! The private-key operation by fragments: blind, ask every cell for its partial, combine,
//! verify (CRYPTO-NOTES §2.1–2.2). Cells never see the message representative.
//!
//! Every partial of one attempt is at one epoch; when a refresh moves the epoch under an
//! attempt, nothing is combined and the whole operation runs again, freshly blinded, at the
//! new epoch (docs/REFRESH.md "Epochs").

use cryptoki_sys::*;
use keyfrag_client::cluster::MAX_EPOCH_ATTEMPTS;
use keyfrag_client::{Cluster, ErrorKind};
use keyfrag_core::rsa_combine;
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_core::secret::SecretBytes;

use super::PrivateKeyOp;
use crate::error::{Result, err};

/// An RSA private key whose exponent exists only as shares on `cluster`'s cells.
pub struct CellKey<'a> {
    pub cluster: &'a Cluster,
    pub uid: &'a str,
    pub public: &'a RsaPublic,
}

impl PrivateKeyOp for CellKey<'_> {
    fn raw_private(&self, x: &[u8]) -> Result<SecretBytes> {
        for _ in 0..MAX_EPOCH_ATTEMPTS {
            let blinded = rsa_combine::blind(self.public, x).map_err(|e| match e {
                keyfrag_core::Error::DataTooLarge => err(CKR_DATA_LEN_RANGE),
                other => other.into(),
            })?;
            let partials = match self.cluster.rsa_partials_once(self.uid, &blinded.input) {
                Ok(p) => p.outputs(),
                Err(e) if e.kind == ErrorKind::EpochMoved => {
                    tracing::debug!(key = self.uid, "epoch moved: {}", e.message);
                    continue;
                }
                Err(e) => return Err(e.into()),
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
