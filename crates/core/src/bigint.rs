//! Shared big-integer plumbing (crypto-bigint 0.7): parsing public values against a modulus and
//! fixed-width big-endian output. Only `to_fixed_be` may see secrets; the parsers trim leading
//! zeros, which is variable time and therefore used on public inputs only.

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, NonZero, Odd, Resize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// Strip leading zero bytes (public values only: the time depends on their count).
pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// An odd modulus with its Montgomery parameters.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Modulus {
    pub(crate) params: BoxedMontyParams,
    /// Exact bit length of N.
    pub(crate) bits: usize,
    /// ceil(bits / 8).
    pub(crate) len: usize,
}

impl Modulus {
    /// Parse a big-endian odd modulus N ≥ 3.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self> {
        let t = trim(bytes);
        if t.is_empty() {
            return Err(Error::InvalidInput("modulus is zero"));
        }
        let n = BoxedUint::from_be_slice_vartime(t);
        let n: Odd<BoxedUint> = n
            .to_odd()
            .into_option()
            .ok_or(Error::InvalidInput("modulus is even"))?;
        let bits = n.as_ref().bit_width_vartime() as usize;
        if bits < 2 {
            return Err(Error::InvalidInput("modulus too small"));
        }
        // N is public, so the variable-time setup is fine (CRYPTO-NOTES §5.1).
        let params = BoxedMontyParams::new_vartime(n);
        Ok(Modulus {
            params,
            bits,
            len: bits.div_ceil(8),
        })
    }

    pub(crate) fn n(&self) -> &BoxedUint {
        self.params.modulus().as_ref()
    }

    pub(crate) fn precision(&self) -> u32 {
        self.params.bits_precision()
    }

    /// A public big-endian value v < N at the modulus' precision; `None` if v ≥ N.
    pub(crate) fn parse_below(&self, bytes: &[u8]) -> Option<BoxedUint> {
        let t = trim(bytes);
        if t.len() > self.len {
            return None;
        }
        let v = BoxedUint::from_be_slice(t, self.precision()).ok()?;
        (v < *self.n()).then_some(v)
    }

    /// The residue of a value already known to be < N.
    pub(crate) fn monty(&self, v: BoxedUint) -> BoxedMontyForm {
        BoxedMontyForm::new(v, &self.params)
    }

    /// The product of big-endian values, each exactly `len` bytes and below N (partials).
    pub(crate) fn product<'a>(
        &self,
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<BoxedMontyForm> {
        let mut acc = BoxedMontyForm::one(&self.params);
        for p in values {
            if p.len() != self.len {
                return Err(Error::InvalidInput("partial has the wrong length"));
            }
            let v = self
                .parse_below(p)
                .ok_or(Error::InvalidInput("partial not below the modulus"))?;
            acc = acc.mul(&self.monty(v));
        }
        Ok(acc)
    }

    /// Exactly `len` big-endian bytes of a residue.
    pub(crate) fn to_bytes(&self, v: &BoxedMontyForm) -> Vec<u8> {
        let r = Zeroizing::new(v.retrieve());
        to_fixed_be(&r, self.len)
    }
}

/// The low `len` bytes of x, big-endian; the caller guarantees x < 2^(8·len). The full-width
/// intermediate is zeroized because x may be secret (shares, plaintexts).
pub(crate) fn to_fixed_be(x: &BoxedUint, len: usize) -> Vec<u8> {
    let full = Zeroizing::new(x.to_be_bytes());
    let mut out = vec![0u8; len];
    if full.len() >= len {
        out.copy_from_slice(&full[full.len() - len..]);
    } else {
        out[len - full.len()..].copy_from_slice(&full);
    }
    out
}

/// SHA-256 in counter mode over `domain ‖ message ‖ block counter`, reduced modulo n: a public
/// value in [0, n) with 128 bits of excess, i.e. statistically uniform. Variable time: public
/// inputs only (test values every party derives alike, so none of them chooses it).
pub(crate) fn hash_below(domain: &[u8], message: &[u8], n: &BoxedUint) -> BoxedUint {
    let len = (n.bit_width_vartime() as usize + 128).div_ceil(8);
    let mut out = Vec::with_capacity(len + 32);
    let mut block = 0u32;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(domain);
        h.update(message);
        h.update(block.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        block += 1;
    }
    out.truncate(len);
    let wide = BoxedUint::from_be_slice_vartime(&out);
    let nz = NonZero::new(n.resize_unchecked(wide.bits_precision())).expect("n > 0");
    wide.rem_vartime(&nz).resize_unchecked(n.bits_precision())
}
