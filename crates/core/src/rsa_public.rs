//! RSA public keys: the module's verify/encrypt and the check of every combined result.

use crate::Result;

/// An RSA public key (N, e). Public-key operations run locally, never on the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsaPublic {
    // implementation-defined (crypto-bigint BoxedUint + precomputed Montgomery params)
}

impl RsaPublic {
    /// From big-endian N and e. Rejects even or < 512-bit moduli, e even, e < 3, e ≥ N.
    pub fn new(modulus: &[u8], public_exponent: &[u8]) -> Result<Self> {
        let _ = (modulus, public_exponent);
        todo!()
    }
    /// Exact bit length of N.
    pub fn bits(&self) -> usize {
        todo!()
    }
    /// k = ceil(bits / 8): the length of signatures, ciphertexts and encoded messages.
    pub fn size(&self) -> usize {
        todo!()
    }
    /// Big-endian N without leading zeros.
    pub fn modulus(&self) -> Vec<u8> {
        todo!()
    }
    /// Big-endian e without leading zeros.
    pub fn public_exponent(&self) -> Vec<u8> {
        todo!()
    }
    /// m^e mod N for a big-endian m < N (any length ≤ k); output exactly k bytes.
    /// Errors: `DataTooLarge` if m ≥ N.
    pub fn raw_public(&self, m: &[u8]) -> Result<Vec<u8>> {
        let _ = m;
        todo!()
    }
}
