//! RSA public keys: the module's verify/encrypt and the check of every combined result.

use crypto_bigint::modular::BoxedMontyForm;
use crypto_bigint::{BoxedUint, MontyForm, MontyMultiplier};

use crate::bigint::{Modulus, trim};
use crate::{Error, Result};

/// Smallest modulus accepted for a key (anything shorter is trivially factored).
pub const MIN_MODULUS_BITS: usize = 512;

/// Exponents up to this many bits use square-and-multiply in `pow_e` (see there).
const SHORT_EXPONENT_BITS: u32 = 64;

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
    ///
    /// For the usual short exponents (65537: 16 squarings and 1 multiplication) a plain
    /// left-to-right square-and-multiply in place beats crypto-bigint's windowed
    /// `pow_bounded_exp`, whose table of 16 powers and masked lookups cost more than the
    /// exponentiation itself. The sequence of operations depends only on e (public); each
    /// Montgomery multiplication is constant time in v, which may be secret (a blinding
    /// factor in the combination). Long exponents keep the windowed method.
    pub(crate) fn pow_e(&self, v: &BoxedMontyForm) -> BoxedMontyForm {
        let bits = self.e.bit_width_vartime();
        if bits > SHORT_EXPONENT_BITS {
            return v.pow_bounded_exp(&self.e, bits);
        }
        // e ≥ 3, so bits ≥ 2 and the top bit (bits − 1) is set: start from v itself.
        let mut mul = <BoxedMontyForm as MontyForm>::Multiplier::from(v.params());
        let mut acc = v.clone();
        for i in (0..bits - 1).rev() {
            mul.square_assign(&mut acc);
            if self.e.bit_vartime(i) {
                mul.mul_assign(&mut acc, v);
            }
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pow_e`'s square-and-multiply agrees with crypto-bigint's windowed exponentiation for
    /// short and long exponents.
    #[test]
    fn pow_e_matches_pow_bounded_exp() {
        let mut s = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut n = vec![0u8; 128];
        n.iter_mut().for_each(|b| *b = next() as u8);
        n[0] |= 0x80;
        n[127] |= 1;
        let mut long_e = vec![0u8; 40];
        long_e.iter_mut().for_each(|b| *b = next() as u8);
        long_e[39] |= 1;
        let exponents: [&[u8]; 6] = [
            &[3],
            &[17],
            &[1, 0, 1],
            &[0xff; 8],
            &[1, 0, 0, 0, 0, 0, 0, 0, 1],
            &long_e,
        ];
        for e in exponents {
            let key = RsaPublic::new(&n, e).unwrap();
            for _ in 0..4 {
                let mut m = vec![0u8; 127];
                m.iter_mut().for_each(|b| *b = next() as u8);
                let v = key.modulus.monty(key.modulus.parse_below(&m).unwrap());
                let want = v.pow_bounded_exp(&key.e, key.e.bit_width_vartime());
                assert_eq!(key.pow_e(&v), want);
            }
        }
    }
}
