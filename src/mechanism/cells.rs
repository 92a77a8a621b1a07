//! The private-key operation by fragments: blind, ask every cell for its partial, combine,
//! verify (CRYPTO-NOTES §2.1–2.2). Cells never see the message representative.

use cryptoki_sys::*;
use keyfrag_client::Cluster;
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
        let blinded = rsa_combine::blind(self.public, x).map_err(|e| match e {
            keyfrag_core::Error::DataTooLarge => err(CKR_DATA_LEN_RANGE),
            other => other.into(),
        })?;
        let partials = partials(
            self.cluster,
            self.uid,
            self.public,
            &blinded.input,
            self.customer.as_ref(),
        )?;
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

/// Every party's partial of the blinded input `x`: the cells' from the cluster and, with a
/// customer share, the module's own x^(2c), computed on this thread while the cells work.
pub fn partials(
    cluster: &Cluster,
    uid: &str,
    public: &RsaPublic,
    x: &[u8],
    customer: Option<&RsaShare>,
) -> Result<Vec<Vec<u8>>> {
    let Some(share) = customer else {
        return Ok(cluster.rsa_partials(uid, x)?);
    };
    let modulus = public.modulus();
    std::thread::scope(|scope| {
        let cells = scope.spawn(|| cluster.rsa_partials(uid, x));
        let own = rsa_partial(&modulus, x, share);
        let mut partials = match cells.join() {
            Ok(r) => r?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        partials.push(own.map_err(|e| {
            tracing::error!(key = uid, "customer partial failed: {e}");
            err(CKR_DEVICE_ERROR)
        })?);
        Ok(partials)
    })
}
