//! Signed integers of share width, and the zero-sum deltas that re-randomise shares.
//!
//! Shared by key generation (its last round re-randomises the fresh d-shares) and proactive
//! refresh (the periodic repetition of that step, CRYPTO-NOTES §2.4): both add to a share the
//! deltas every party dealt, in fixed-width two's-complement arithmetic.

use crypto_bigint::{BoxedUint, Choice, CtNeg, Resize};
use zeroize::Zeroizing;

use crate::bigint::to_fixed_be;
use crate::keygen::KeygenRng;
use crate::keygen::rng::random_bits;
use crate::rsa_share::{RsaShare, share_bytes, share_exponent_bits};
use crate::secret::SecretBytes;
use crate::{Error, Result};

/// A signed integer in two's complement at the width of a share plus a spare limb.
pub(crate) struct Signed(Zeroizing<BoxedUint>);

impl Signed {
    pub(crate) fn width(modulus_bits: usize) -> u32 {
        (share_exponent_bits(modulus_bits) + 64) as u32
    }

    pub(crate) fn zero(w: u32) -> Signed {
        Signed(Zeroizing::new(BoxedUint::zero_with_precision(w)))
    }

    pub(crate) fn from_parts(negative: Choice, magnitude: &BoxedUint, w: u32) -> Signed {
        let m = Zeroizing::new(magnitude.resize_unchecked(w));
        Signed(Zeroizing::new(m.ct_neg(negative)))
    }

    /// A share in `split_exponent`'s form, at the signed width for its modulus.
    pub(crate) fn from_share(share: &RsaShare, modulus_bits: usize) -> Result<Signed> {
        let w = Signed::width(modulus_bits);
        let mag = Zeroizing::new(
            BoxedUint::from_be_slice(share.magnitude.expose(), w)
                .map_err(|_| Error::InvalidInput("share wider than its modulus allows"))?,
        );
        Ok(Signed::from_parts(
            Choice::from_u8_lsb(u8::from(share.negative)),
            &mag,
            w,
        ))
    }

    pub(crate) fn add(&self, other: &Signed) -> Signed {
        Signed(Zeroizing::new(self.0.wrapping_add(&*other.0)))
    }

    pub(crate) fn neg(&self) -> Signed {
        Signed(Zeroizing::new(self.0.wrapping_neg()))
    }

    fn parts(&self) -> (Choice, Zeroizing<BoxedUint>) {
        let neg = self.0.bit(self.0.bits_precision() - 1);
        (neg, Zeroizing::new(self.0.ct_neg(neg)))
    }

    /// Sign byte ‖ magnitude in exactly `len` bytes (fails if it does not fit).
    pub(crate) fn encode(&self, len: usize, out: &mut Vec<u8>) -> Result<()> {
        let (neg, mag) = self.parts();
        if mag.bit_width() as usize > 8 * len {
            return Err(Error::InvalidInput("signed value wider than its encoding"));
        }
        out.push(neg.to_u8());
        out.extend_from_slice(&to_fixed_be(&mag, len));
        Ok(())
    }

    pub(crate) fn decode(bytes: &[u8], w: u32) -> Result<Signed> {
        let (sign, mag) = bytes
            .split_first()
            .ok_or(Error::InvalidInput("empty signed value"))?;
        if *sign > 1 {
            return Err(Error::InvalidInput("bad sign byte"));
        }
        let mag = Zeroizing::new(
            BoxedUint::from_be_slice(mag, w)
                .map_err(|_| Error::InvalidInput("signed value too wide"))?,
        );
        Ok(Signed::from_parts(Choice::from_u8_lsb(*sign), &mag, w))
    }

    /// The share in `split_exponent`'s form: sign and a `share_bytes` magnitude that fits
    /// `share_exponent_bits` (a cell refuses anything wider).
    pub(crate) fn to_share(&self, modulus_bits: usize) -> Result<RsaShare> {
        let (neg, mag) = self.parts();
        if mag.bit_width() as usize > share_exponent_bits(modulus_bits) {
            return Err(Error::InvalidInput("share wider than the fixed width"));
        }
        Ok(RsaShare {
            negative: neg.to_bool(),
            magnitude: SecretBytes::new(to_fixed_be(&mag, share_bytes(modulus_bits))),
        })
    }
}

/// Deltas δ_{me→j} for every party j: uniform magnitudes of `bits` bits with a random sign for
/// j ≠ me, and δ_{me→me} = −Σ the others, so this party's row sums to zero (§2.4).
pub(crate) fn zero_sum_row(
    rng: &mut dyn KeygenRng,
    me: usize,
    parties: usize,
    bits: usize,
    modulus_bits: usize,
) -> Result<Vec<Signed>> {
    let w = Signed::width(modulus_bits);
    let mut out: Vec<Signed> = Vec::with_capacity(parties);
    let mut sum = Signed::zero(w);
    for j in 0..parties {
        if j == me {
            out.push(Signed::zero(w));
            continue;
        }
        let mag = random_bits(rng, bits, w).map_err(|_| Error::Random)?;
        let mut sign = [0u8; 1];
        rng.fill(&mut sign).map_err(|_| Error::Random)?;
        let d = Signed::from_parts(Choice::from_u8_lsb(sign[0] & 1), &mag, w);
        sum = sum.add(&d);
        out.push(d);
    }
    out[me] = sum.neg();
    Ok(out)
}
