//! Shares of d for e = 65537 (BF small-e method, CRYPTO-NOTES §1.6), in fixed-width
//! two's-complement integer arithmetic (`crate::signed`, which also holds the final
//! re-randomisation shared with refresh).
//!
//! φ₀ = N − p₀ − q₀ + 1 and φᵢ = −(pᵢ + qᵢ), so Σ φᵢ = φ(N). With ψ = φ mod e (revealed only
//! as a masked sum) and ζ = −ψ⁻¹ mod e, d = (1 + ζφ)/e is an integer with e·d ≡ 1 (mod φ).
//! Floor shares d₀ = ⌊(1 + ζφ₀)/e⌋, dᵢ = ⌊ζφᵢ/e⌋ sum to d − r with r ∈ [0, n).

use crypto_bigint::{BoxedUint, Choice, NonZero, Resize};
use zeroize::Zeroizing;

use crate::signed::Signed;

use super::Result;
use super::rng::{KeygenRng, uniform_small};

/// The public exponent: the small-e method needs e prime (ψ invertible whenever ψ ≠ 0).
pub const E: u64 = 65537;

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
