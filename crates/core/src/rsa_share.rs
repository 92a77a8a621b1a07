//! Additive integer shares of an RSA private exponent: d = Σ dᵢ over the integers.
//!
//! Shares are random, signed, and of fixed width: each random share is uniform in
//! ±[0, 2^(|N|+160)), the last one is d − Σ others. Short or structured shares are forbidden
//! (CRYPTO-NOTES §2.3). The magnitude travels and is stored at `share_bytes(|N|)` bytes so
//! that the exponentiation width never depends on the value.

use crate::Result;
use crate::secret::SecretBytes;

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

/// One additive share. Zeroized on drop; Debug prints `[redacted]`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RsaShare {
    pub negative: bool,
    /// Big-endian magnitude, exactly `share_bytes(modulus_bits)` long.
    pub magnitude: SecretBytes,
}

/// Split a private exponent d (big-endian) into `parties` additive shares for a key whose
/// modulus has `modulus_bits` bits. The caller zeroizes d after this returns.
/// Errors: parties < 2, d = 0 or d wider than the modulus.
pub fn split_exponent(d: &[u8], modulus_bits: usize, parties: usize) -> Result<Vec<RsaShare>> {
    let _ = (d, modulus_bits, parties);
    todo!()
}
