//! Additive integer shares of an RSA private exponent: d = Σ dᵢ over the integers.
//!
//! Shares are random, signed, and of fixed width: each random share is uniform in
//! ±[0, 2^(|N|+160)), the last one is d − Σ others. Short or structured shares are forbidden
//! (CRYPTO-NOTES §2.3). The magnitude travels and is stored at `share_bytes(|N|)` bytes so
//! that the exponentiation width never depends on the value.

use crypto_bigint::{BoxedUint, Choice, CtNeg};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::bigint::to_fixed_be;
use crate::secret::SecretBytes;
use crate::{Error, Result, random};

/// Bits of statistical hiding added to |N| for random shares.
pub const SHARE_HIDING_BITS: usize = 160;

/// Fixed exponent width (bits) cells use for a share of a key with an `modulus_bits` modulus:
/// room for |N| + 160-bit shares, a sum of a few of them, and later refresh deltas.
pub fn share_exponent_bits(modulus_bits: usize) -> usize {
    modulus_bits + SHARE_HIDING_BITS + 64
}

/// Bytes of a share magnitude at its fixed width.
pub fn share_bytes(modulus_bits: usize) -> usize {
    share_exponent_bits(modulus_bits).div_ceil(8)
}

/// Whether a big-endian magnitude of `share_bytes(modulus_bits)` bytes fits in
/// `share_exponent_bits(modulus_bits)` bits: the padding bits of its first byte are zero.
/// A cell's exponentiation reads only that many bits, so anything wider would be silently
/// truncated. Looks only at those padding bits, never at the share's value bits.
pub fn magnitude_fits(magnitude: &[u8], modulus_bits: usize) -> bool {
    if magnitude.len() != share_bytes(modulus_bits) {
        return false;
    }
    let spare = 8 * magnitude.len() - share_exponent_bits(modulus_bits);
    let pad_mask = !(0xffu8 >> spare);
    magnitude.first().is_some_and(|b| b & pad_mask == 0)
}

/// One additive share. Zeroized on drop; Debug prints `[redacted]`.
#[derive(Clone)]
pub struct RsaShare {
    pub negative: bool,
    /// Big-endian magnitude, exactly `share_bytes(modulus_bits)` long.
    pub magnitude: SecretBytes,
}

impl std::fmt::Debug for RsaShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The sign is secret too: it is one bit of the share.
        f.write_str("RsaShare([redacted])")
    }
}

impl PartialEq for RsaShare {
    /// Constant-time in the contents (lengths are public).
    fn eq(&self, other: &Self) -> bool {
        let sign = (self.negative as u8).ct_eq(&(other.negative as u8));
        let mag = self.magnitude.expose().ct_eq(other.magnitude.expose());
        (sign & mag).into()
    }
}

impl Eq for RsaShare {}

/// Split a private exponent d (big-endian) into `parties` additive shares for a key whose
/// modulus has `modulus_bits` bits. The caller zeroizes d after this returns.
/// Errors: parties < 2, d = 0 or d wider than the modulus.
pub fn split_exponent(d: &[u8], modulus_bits: usize, parties: usize) -> Result<Vec<RsaShare>> {
    if parties < 2 {
        return Err(Error::InvalidInput("at least two parties are needed"));
    }
    split(d, modulus_bits, parties, None)
}

/// Split d into `parties` shares that sum to d − `fixed`: the cells' shares of a key whose
/// remaining share is fixed in advance (the customer's c = PRF(seed, type ‖ key uid), DESIGN
/// "Customer fragment"). With one party the share is d − fixed itself.
pub fn split_exponent_around(
    d: &[u8],
    modulus_bits: usize,
    parties: usize,
    fixed: &RsaShare,
) -> Result<Vec<RsaShare>> {
    if parties < 1 {
        return Err(Error::InvalidInput("at least one party is needed"));
    }
    if !magnitude_fits(fixed.magnitude.expose(), modulus_bits) {
        return Err(Error::InvalidInput("fixed share has the wrong width"));
    }
    split(d, modulus_bits, parties, Some(fixed))
}

fn split(
    d: &[u8],
    modulus_bits: usize,
    parties: usize,
    fixed: Option<&RsaShare>,
) -> Result<Vec<RsaShare>> {
    let exp_bits = share_exponent_bits(modulus_bits);
    let out_len = share_bytes(modulus_bits);
    // Two's-complement working width: one spare limb above the share width, so that
    // d − Σ others (|·| < 2^(|N|+160+64) for any realistic party count) never wraps.
    let width =
        u32::try_from(exp_bits + 64).map_err(|_| Error::InvalidInput("modulus too large"))?;
    let width_bytes = (width as usize).div_ceil(8);

    // Only the length of d's encoding (public: about |N|) decides this branch, never its value.
    let d = if d.len() > width_bytes {
        let (pad, tail) = d.split_at(d.len() - width_bytes);
        if pad.iter().any(|&b| b != 0) {
            return Err(Error::InvalidInput(
                "private exponent wider than the modulus",
            ));
        }
        tail
    } else {
        d
    };
    let d = Zeroizing::new(
        BoxedUint::from_be_slice(d, width)
            .map_err(|_| Error::InvalidInput("private exponent wider than the modulus"))?,
    );
    // Validity checks (reveal only "valid or not"): crypto-bigint's bits() is constant time.
    if bool::from(d.is_zero()) {
        return Err(Error::InvalidInput("private exponent is zero"));
    }
    if d.bit_width() as usize > modulus_bits {
        return Err(Error::InvalidInput(
            "private exponent wider than the modulus",
        ));
    }

    let hiding_bits = modulus_bits + SHARE_HIDING_BITS;
    let rand_len = hiding_bits.div_ceil(8);
    let top_mask = 0xffu8 >> (8 * rand_len - hiding_bits);

    let mut shares = Vec::with_capacity(parties);
    let mut sum = Zeroizing::new(BoxedUint::zero_with_precision(width));
    if let Some(fixed) = fixed {
        let magnitude = Zeroizing::new(
            BoxedUint::from_be_slice(fixed.magnitude.expose(), width)
                .map_err(|_| Error::InvalidInput("width"))?,
        );
        let signed =
            Zeroizing::new(magnitude.ct_neg(Choice::from_u8_lsb(u8::from(fixed.negative))));
        sum.wrapping_add_assign(&*signed);
    }
    for _ in 1..parties {
        // Magnitude uniform in [0, 2^(|N|+160)), sign from one more random byte.
        let mut buf = Zeroizing::new(vec![0u8; rand_len + 1]);
        random::fill(&mut buf)?;
        buf[1] &= top_mask;
        let negative = Choice::from_u8_lsb(buf[0]);
        let magnitude = Zeroizing::new(
            BoxedUint::from_be_slice(&buf[1..], width).map_err(|_| Error::InvalidInput("width"))?,
        );
        let signed = Zeroizing::new(magnitude.ct_neg(negative));
        sum.wrapping_add_assign(&*signed);
        shares.push(RsaShare {
            negative: negative.to_bool(),
            magnitude: SecretBytes::new(to_fixed_be(&magnitude, out_len)),
        });
    }

    // last = d − Σ others in two's complement; its top bit is the sign.
    let last = Zeroizing::new(d.wrapping_sub(&*sum));
    let negative = last.bit(last.bits_precision() - 1);
    let magnitude = Zeroizing::new(last.ct_neg(negative));
    debug_assert!(magnitude.bit_width() as usize <= exp_bits);
    shares.push(RsaShare {
        negative: negative.to_bool(),
        magnitude: SecretBytes::new(to_fixed_be(&magnitude, out_len)),
    });
    Ok(shares)
}
