//! RSA public keys: the module's verify/encrypt and the check of every combined result.

use crypto_bigint::BoxedUint;
use crypto_bigint::modular::BoxedMontyForm;

use crate::bigint::{Modulus, trim};
use crate::{Error, Result};

/// Smallest modulus accepted for a key (anything shorter is trivially factored).
pub const MIN_MODULUS_BITS: usize = 512;

/// An RSA public key (N, e). Public-key operations run locally, never on the network.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublic {
    pub(crate) modulus: Modulus,
    /// e at the modulus' precision (e < N), so it can be used with the Montgomery params.
    pub(crate) e: BoxedUint,
}

impl std::fmt::Debug for RsaPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPublic")
            .field("bits", &self.bits())
            .field("e", &self.e.to_string_radix_vartime(10))
            .finish()
    }
}

impl RsaPublic {
    /// From big-endian N and e. Rejects even or < 512-bit moduli, e even, e < 3, e ≥ N.
    pub fn new(modulus: &[u8], public_exponent: &[u8]) -> Result<Self> {
        let modulus = Modulus::parse(modulus)?;
        if modulus.bits < MIN_MODULUS_BITS {
            return Err(Error::InvalidInput("modulus shorter than 512 bits"));
        }
        let e_bytes = trim(public_exponent);
        // e < 3 (including empty or zero) and e ≥ N are both rejected; parse_below catches ≥ N.
        let e = modulus
            .parse_below(e_bytes)
            .ok_or(Error::InvalidInput("public exponent not below the modulus"))?;
        if e.bit_width_vartime() < 2 {
            return Err(Error::InvalidInput("public exponent below 3"));
        }
        // Odd e is what makes (e+1)/2 an integer in the combination (CRYPTO-NOTES §2.2).
        if !e.bit_vartime(0) {
            return Err(Error::InvalidInput("public exponent is even"));
        }
        Ok(RsaPublic { modulus, e })
    }

    /// Exact bit length of N.
    pub fn bits(&self) -> usize {
        self.modulus.bits
    }

    /// k = ceil(bits / 8): the length of signatures, ciphertexts and encoded messages.
    pub fn size(&self) -> usize {
        self.modulus.len
    }

    /// Big-endian N without leading zeros.
    pub fn modulus(&self) -> Vec<u8> {
        self.modulus.n().to_be_bytes_trimmed_vartime().into_vec()
    }

    /// Big-endian e without leading zeros.
    pub fn public_exponent(&self) -> Vec<u8> {
        self.e.to_be_bytes_trimmed_vartime().into_vec()
    }

    /// m^e mod N for a big-endian m < N (any length ≤ k); output exactly k bytes.
    /// Errors: `DataTooLarge` if m ≥ N.
    pub fn raw_public(&self, m: &[u8]) -> Result<Vec<u8>> {
        let m = self.modulus.parse_below(m).ok_or(Error::DataTooLarge)?;
        let c = self.pow_e(&self.modulus.monty(m));
        Ok(self.modulus.to_bytes(&c))
    }

    /// v^e; e is public, so its actual bit length may set the loop count.
    pub(crate) fn pow_e(&self, v: &BoxedMontyForm) -> BoxedMontyForm {
        v.pow_bounded_exp(&self.e, self.e.bit_width_vartime())
    }
}
