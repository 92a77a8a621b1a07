//! A PRF key share kᵢ: a scalar mod ℓ that one party holds (a cell's, or the customer's).

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::scalar::Scalar;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::group::{Element, SCALAR_LEN, random_scalar, scalar_from_bytes};
use crate::Result;

/// One additive share of the PRF key k = Σ kᵢ mod ℓ. Zeroized on drop; Debug prints
/// `[redacted]`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PrfShare(pub(crate) Scalar);

impl std::fmt::Debug for PrfShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrfShare([redacted])")
    }
}

impl PrfShare {
    /// A fresh uniform non-zero share from OS randomness: what a cell samples alone.
    pub fn random() -> Result<PrfShare> {
        Ok(PrfShare(random_scalar()?))
    }

    /// A share from its canonical 32-byte little-endian encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<PrfShare> {
        scalar_from_bytes(bytes).map(PrfShare)
    }

    pub fn to_bytes(&self) -> Zeroizing<[u8; SCALAR_LEN]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public commitment Kᵢ = kᵢ·G (RFC 9497's pkS for this share). None for the zero
    /// share, which has no non-identity commitment (and which `random` never yields).
    pub fn commitment(&self) -> Option<Element> {
        Element::new(&self.0 * RISTRETTO_BASEPOINT_TABLE).ok()
    }

    /// The share plus `delta` mod ℓ (refresh).
    pub fn add(&self, delta: &PrfShare) -> PrfShare {
        PrfShare(self.0 + delta.0)
    }

    /// Σ of shares mod ℓ: the whole key, for tests and oracles only — the running system never
    /// adds shares.
    pub fn sum<'a>(shares: impl IntoIterator<Item = &'a PrfShare>) -> PrfShare {
        PrfShare(shares.into_iter().map(|s| s.0).sum())
    }

    /// A share from 64 uniform bytes reduced mod ℓ (the customer's derived share).
    pub fn from_uniform(wide: &[u8; 64]) -> PrfShare {
        PrfShare(Scalar::from_bytes_mod_order_wide(wide))
    }
}
