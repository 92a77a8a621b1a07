//! The private-key operation by fragments: blind, ask every cell for its partial, combine,
//! verify (CRYPTO-NOTES §2.1–2.2). Cells never see the message representative.

use cryptoki_sys::*;
use keyfrag_client::Cluster;
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
        let blinded = rsa_combine::blind(self.public, x).map_err(|e| match e {
            keyfrag_core::Error::DataTooLarge => err(CKR_DATA_LEN_RANGE),
            other => other.into(),
        })?;
        let partials = self.cluster.rsa_partials(self.uid, &blinded.input)?;
        rsa_combine::combine(self.public, &blinded, &partials).map_err(|e| {
            tracing::error!(
                key = self.uid,
                error = %e,
                "combined RSA result rejected (a cell returned a wrong or malformed partial)"
            );
            err(CKR_DEVICE_ERROR)
        })
    }
}
