//! Shares of d for e = 65537 (BF small-e method, CRYPTO-NOTES §1.6) and the final
//! re-randomisation (§2.4), in fixed-width two's-complement integer arithmetic.
//!
//! φ₀ = N − p₀ − q₀ + 1 and φᵢ = −(pᵢ + qᵢ), so Σ φᵢ = φ(N). With ψ = φ mod e (revealed only
//! as a masked sum) and ζ = −ψ⁻¹ mod e, d = (1 + ζφ)/e is an integer with e·d ≡ 1 (mod φ).
//! Floor shares d₀ = ⌊(1 + ζφ₀)/e⌋, dᵢ = ⌊ζφᵢ/e⌋ sum to d − r with r ∈ [0, n).

use crypto_bigint::{BoxedUint, Choice, CtNeg, NonZero, Resize};
use zeroize::Zeroizing;

use crate::bigint::to_fixed_be;
use crate::rsa_share::{RsaShare, share_bytes, share_exponent_bits};
use crate::secret::SecretBytes;

use super::rng::{KeygenRng, random_bits, uniform_small};
use super::{KeygenError, Result};

/// The public exponent: the small-e method needs e prime (ψ invertible whenever ψ ≠ 0).
pub const E: u64 = 65537;

/// A signed integer in two's complement at the width of a share plus a spare limb.
pub(crate) struct Signed(Zeroizing<BoxedUint>);

impl Signed {
    pub(crate) fn width(modulus_bits: usize) -> u32 {
        (share_exponent_bits(modulus_bits) + 64) as u32
    }

    pub(crate) fn from_parts(negative: Choice, magnitude: &BoxedUint, w: u32) -> Signed {
        let m = Zeroizing::new(magnitude.resize_unchecked(w));
        Signed(Zeroizing::new(m.ct_neg(negative)))
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
            return Err(KeygenError::Failed("signed value wider than its encoding"));
        }
        out.push(neg.to_u8());
        out.extend_from_slice(&to_fixed_be(&mag, len));
        Ok(())
    }

    pub(crate) fn decode(bytes: &[u8], w: u32) -> Result<Signed> {
        let (sign, mag) = bytes.split_first().ok_or(KeygenError::Malformed("empty"))?;
        if *sign > 1 {
            return Err(KeygenError::Malformed("sign byte"));
        }
        let mag = Zeroizing::new(
            BoxedUint::from_be_slice(mag, w).map_err(|_| KeygenError::Malformed("too wide"))?,
        );
        Ok(Signed::from_parts(Choice::from_u8_lsb(*sign), &mag, w))
    }

    /// The share in `split_exponent`'s form: sign and a `share_bytes` magnitude that fits
    /// `share_exponent_bits` (a cell refuses anything wider).
    pub(crate) fn to_share(&self, modulus_bits: usize) -> Result<RsaShare> {
        let (neg, mag) = self.parts();
        if mag.bit_width() as usize > share_exponent_bits(modulus_bits) {
            return Err(KeygenError::Failed("share wider than the fixed width"));
        }
        Ok(RsaShare {
            negative: neg.to_bool(),
            magnitude: SecretBytes::new(to_fixed_be(&mag, share_bytes(modulus_bits))),
        })
    }
}

/// φ_me mod e, in constant time (crypto-bigint's `rem` is constant time in the dividend).
pub(crate) fn phi_mod_e(me: usize, n: &BoxedUint, p: &BoxedUint, q: &BoxedUint) -> u64 {
    let (neg, mag) = phi_parts(me, n, p, q);
    let e = NonZero::new(BoxedUint::from(E).resize_unchecked(mag.bits_precision())).expect("e");
    let r = mag.rem(&e).as_words()[0];
    // Negative role (public): −r mod e; `%` by a constant compiles to multiplications.
    if neg { (E - r) % E } else { r }
}

/// (is φ_me negative — a function of the role only, |φ_me|).
fn phi_parts(
    me: usize,
    n: &BoxedUint,
    p: &BoxedUint,
    q: &BoxedUint,
) -> (bool, Zeroizing<BoxedUint>) {
    let prec = n.bits_precision() + 64;
    let s = Zeroizing::new(
        p.resize_unchecked(prec)
            .wrapping_add(q.resize_unchecked(prec)),
    );
    if me == 0 {
        let one = BoxedUint::one_with_precision(prec);
        let v = n
            .resize_unchecked(prec)
            .wrapping_add(&one)
            .wrapping_sub(&*s);
        (false, Zeroizing::new(v))
    } else {
        (true, s)
    }
}

/// Masks μ_{me→j} ∈ Z_e for every party j (own included), summing to 0 mod e.
pub(crate) fn masks(rng: &mut dyn KeygenRng, parties: usize) -> Result<Zeroizing<Vec<u64>>> {
    let mut v = Zeroizing::new(Vec::with_capacity(parties));
    let mut sum = 0u64;
    for _ in 1..parties {
        let m = uniform_small(rng, E)?;
        sum = (sum + m) % E;
        v.push(m);
    }
    v.push((E - sum) % E);
    Ok(v)
}

/// ζ = −ψ⁻¹ mod e for public ψ ≠ 0 (Fermat inverse; e is prime).
pub(crate) fn zeta(psi: u64) -> u64 {
    let mut inv = 1u64;
    let (mut base, mut exp) = (psi % E, E - 2);
    while exp > 0 {
        if exp & 1 == 1 {
            inv = inv * base % E;
        }
        base = base * base % E;
        exp >>= 1;
    }
    (E - inv) % E
}

/// The floor share: d₀ = ⌊(1 + ζφ₀)/e⌋ ≥ 0, dᵢ = ⌊ζφᵢ/e⌋ = −⌈ζ(pᵢ+qᵢ)/e⌉ ≤ 0.
pub(crate) fn floor_share(
    me: usize,
    zeta: u64,
    n: &BoxedUint,
    p: &BoxedUint,
    q: &BoxedUint,
    modulus_bits: usize,
) -> Signed {
    let w = Signed::width(modulus_bits);
    let (neg, mag) = phi_parts(me, n, p, q);
    let mag = Zeroizing::new((&*mag).resize_unchecked(w));
    let z = BoxedUint::from(zeta).resize_unchecked(w);
    let e = BoxedUint::from(E).resize_unchecked(w);
    let prod = Zeroizing::new(mag.wrapping_mul(&z));
    // Numerator rounded so that one unsigned division floors the signed quotient.
    let num = Zeroizing::new(if neg {
        prod.wrapping_add(e.wrapping_sub(BoxedUint::one_with_precision(w)))
    } else {
        prod.wrapping_add(BoxedUint::one_with_precision(w))
    });
    let q = Zeroizing::new(num.div_rem(&NonZero::new(e).expect("e")).0);
    Signed::from_parts(Choice::from_u8_lsb(neg as u8), &q, w)
}

/// Refresh deltas δ_{me→j} for every party j: uniform magnitudes of `bits` bits with a random
/// sign for j ≠ me, and δ_{me→me} = −Σ the others, so this party's row sums to zero (§2.4).
pub(crate) fn deltas(
    rng: &mut dyn KeygenRng,
    me: usize,
    parties: usize,
    bits: usize,
    modulus_bits: usize,
) -> Result<Vec<Signed>> {
    let w = Signed::width(modulus_bits);
    let mut out: Vec<Signed> = Vec::with_capacity(parties);
    let mut sum = Signed(Zeroizing::new(BoxedUint::zero_with_precision(w)));
    for j in 0..parties {
        if j == me {
            out.push(Signed(Zeroizing::new(BoxedUint::zero_with_precision(w))));
            continue;
        }
        let mag = random_bits(rng, bits, w)?;
        let mut sign = [0u8; 1];
        rng.fill(&mut sign)?;
        let d = Signed::from_parts(Choice::from_u8_lsb(sign[0] & 1), &mag, w);
        sum = sum.add(&d);
        out.push(d);
    }
    out[me] = sum.neg();
    Ok(out)
}
