//! Almost Montgomery multiplication in radix 2^52 with AVX-512 IFMA (x86-64 only).
//!
//! The method of Gueron and Krasnov, "Accelerating big integer arithmetic using Intel IFMA
//! extensions" (ARITH 2016) — the one OpenSSL's `rsaz-*-avx512` uses — written with
//! `core::arch` intrinsics:
//! - a number is D digits of 52 bits, 8 digits per 512-bit vector, V = ⌈D/8⌉ vectors;
//!   R = 2^(52·D) > 4N;
//! - `amm(a, b)` = a·b·R⁻¹ + q·N for some q, with a, b < 2N ⇒ result < 2N (HAC 14.36 bound
//!   with R > 4N), word-serial over b's digits: acc += a·bᵢ (low halves) and y·N (low halves)
//!   with y chosen so that the low digit vanishes, shift down one digit, then add the high
//!   halves. Lanes hold up to 64 bits between normalisations (each round adds < 2^54 + 2^12
//!   to a lane, and a lane lives at most D ≤ 80 rounds: < 2^61).
//! - After each product the digits are normalised (carries propagated, in the vectors) so the
//!   next product reads 52-bit digits, as the IFMA instructions use only the low 52 bits of
//!   each input.
//!
//! Numbers stay in vector form (`Vector<V>`) for a whole exponentiation; `Num` (plain
//! digits) is only the form at the entry and the exit (`to_vector`, `from_vector`).
//!
//! Everything here is a safe `#[target_feature]` function (freely callable from code with the
//! same features) using only intrinsics that take no pointers. Code without the features
//! enters it at exactly one place: the dispatch in `window.rs` (`run`), after `available()`.
//!
//! Constant time: the instruction sequence depends only on V and D (public, from |N|);
//! IFMA, shifts, adds, compares and masked subtractions run in data-independent time; carries
//! are arithmetic (also the ripple through the compare masks).

use core::arch::x86_64::*;

/// Digit mask.
pub(super) const M52: u64 = (1u64 << 52) - 1;

/// A number as V vectors of 8 digits, little-endian (digit 8k + j is lane j of vector k).
pub(super) type Vector<const V: usize> = [__m512i; V];

/// A number as plain digits, in the same layout as `Vector` (the entry and exit form).
#[derive(Clone, Copy)]
pub(super) struct Num<const V: usize>(pub(super) [[u64; 8]; V]);

impl<const V: usize> Num<V> {
    pub(super) const ZERO: Self = Num([[0u64; 8]; V]);

    #[inline(always)]
    pub(super) fn digit(&self, i: usize) -> u64 {
        self.0[i / 8][i % 8]
    }

    #[inline(always)]
    pub(super) fn digit_mut(&mut self, i: usize) -> &mut u64 {
        &mut self.0[i / 8][i % 8]
    }
}

/// Whether this CPU can run the kernel (cached by std after the first call).
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512ifma")
}

/// The modulus and its constants for the kernel.
pub(super) struct Ctx<const V: usize> {
    /// N in D normalised digits.
    pub(super) n: Vector<V>,
    /// N's lowest digit.
    pub(super) n0: u64,
    /// −N⁻¹ mod 2^52.
    pub(super) k0: u64,
    /// Number of digits D (≤ 8·V); R = 2^(52·D).
    pub(super) d: usize,
}

/// Plain digits → vectors.
#[target_feature(enable = "avx512f")]
pub(super) fn to_vector<const V: usize>(x: &Num<V>) -> Vector<V> {
    let mut out = [_mm512_setzero_si512(); V];
    for (o, l) in out.iter_mut().zip(x.0.iter()) {
        *o = _mm512_set_epi64(
            l[7] as i64,
            l[6] as i64,
            l[5] as i64,
            l[4] as i64,
            l[3] as i64,
            l[2] as i64,
            l[1] as i64,
            l[0] as i64,
        );
    }
    out
}

/// Vectors → plain digits.
#[target_feature(enable = "avx512f")]
pub(super) fn from_vector<const V: usize>(x: &Vector<V>) -> Num<V> {
    let mut out = Num::<V>::ZERO;
    for (o, &v) in out.0.iter_mut().zip(x.iter()) {
        let lo = _mm512_extracti64x4_epi64::<0>(v);
        let hi = _mm512_extracti64x4_epi64::<1>(v);
        *o = [
            _mm256_extract_epi64::<0>(lo) as u64,
            _mm256_extract_epi64::<1>(lo) as u64,
            _mm256_extract_epi64::<2>(lo) as u64,
            _mm256_extract_epi64::<3>(lo) as u64,
            _mm256_extract_epi64::<0>(hi) as u64,
            _mm256_extract_epi64::<1>(hi) as u64,
            _mm256_extract_epi64::<2>(hi) as u64,
            _mm256_extract_epi64::<3>(hi) as u64,
        ];
    }
    out
}

/// The number 1 (digit 0 = 1).
#[target_feature(enable = "avx512f")]
pub(super) fn one<const V: usize>() -> Vector<V> {
    let mut out = [_mm512_setzero_si512(); V];
    out[0] = _mm512_zextsi128_si512(_mm_cvtsi64_si128(1));
    out
}

/// Lane 0 of a vector.
#[target_feature(enable = "avx512f")]
fn lane0(v: __m512i) -> u64 {
    _mm_cvtsi128_si64(_mm512_castsi512_si128(v)) as u64
}

/// amm(a, b). `a`, `b` normalised with value < 2N; the result normalised, < 2N.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) fn amm<const V: usize>(ctx: &Ctx<V>, a: &Vector<V>, b: &Vector<V>) -> Vector<V> {
    let a0 = lane0(a[0]);
    let n0 = ctx.n0;
    let zero = _mm512_setzero_si512();
    let mut acc = [zero; V];

    for i in 0..ctx.d {
        // bᵢ in every lane (i is public: the lane index is not data), and as a scalar.
        let bv = _mm512_permutexvar_epi64(_mm512_set1_epi64((i % 8) as i64), b[i / 8]);
        let bi = lane0(bv);
        // The low digit after adding the low halves of a₀·bᵢ and y·n₀, computed on the
        // scalar side so that y does not wait for the vector additions.
        let x0 = lane0(acc[0]);
        let t0 = x0.wrapping_add(a0.wrapping_mul(bi) & M52);
        let y = t0.wrapping_mul(ctx.k0) & M52;
        let carry = t0.wrapping_add(n0.wrapping_mul(y) & M52) >> 52;

        let yv = _mm512_set1_epi64(y as i64);
        for k in 0..V {
            acc[k] = _mm512_madd52lo_epu64(acc[k], a[k], bv);
            acc[k] = _mm512_madd52lo_epu64(acc[k], ctx.n[k], yv);
        }
        // Drop the (now zero mod 2^52) low digit: shift all lanes down by one.
        for k in 0..V {
            let next = if k + 1 < V { acc[k + 1] } else { zero };
            acc[k] = _mm512_alignr_epi64::<1>(next, acc[k]);
        }
        acc[0] = _mm512_add_epi64(
            acc[0],
            _mm512_zextsi128_si512(_mm_cvtsi64_si128(carry as i64)),
        );
        for k in 0..V {
            acc[k] = _mm512_madd52hi_epu64(acc[k], a[k], bv);
            acc[k] = _mm512_madd52hi_epu64(acc[k], ctx.n[k], yv);
        }
    }
    normalise(&mut acc);
    acc
}

/// Propagate carries so every digit is < 2^52. Lanes hold < 2^63 and the value is < R (so
/// nothing leaves digit D − 1, and lanes at and above D stay zero).
#[target_feature(enable = "avx512f")]
fn normalise<const V: usize>(acc: &mut Vector<V>) {
    let zero = _mm512_setzero_si512();
    let m52 = _mm512_set1_epi64(M52 as i64);
    // One step: digit i keeps its low 52 bits and receives the high bits of digit i − 1.
    // Afterwards every digit is ≤ (2^52 − 1) + 2^11, so at most a carry of 1 remains.
    let mut hi = [zero; V];
    for k in 0..V {
        hi[k] = _mm512_srli_epi64::<52>(acc[k]);
        acc[k] = _mm512_and_si512(acc[k], m52);
    }
    for k in 0..V {
        let prev = if k > 0 { hi[k - 1] } else { zero };
        // Lanes [prev₇, hi₀, …, hi₆].
        acc[k] = _mm512_add_epi64(acc[k], _mm512_alignr_epi64::<7>(hi[k], prev));
    }
    // The remaining single-bit carries: digits > 2^52 − 1 generate one, digits = 2^52 − 1
    // pass one on; ripple them through the masks as one integer addition.
    let mut generate = 0u128;
    let mut propagate = 0u128;
    for (k, &v) in acc.iter().enumerate() {
        generate |= u128::from(_mm512_cmpgt_epu64_mask(v, m52)) << (8 * k);
        propagate |= u128::from(_mm512_cmpeq_epu64_mask(v, m52)) << (8 * k);
    }
    let carry_in = carries(generate, propagate);
    for (k, v) in acc.iter_mut().enumerate() {
        // +1 mod 2^52 where a carry comes in: v − (2^52 − 1) ≡ v + 1, then mask.
        let m = (carry_in >> (8 * k)) as __mmask8;
        *v = _mm512_and_si512(_mm512_mask_sub_epi64(*v, m, *v, m52), m52);
    }
}

/// Carry-in bits of a digit string (bit i: digit i receives a carry) from the digits that
/// generate a carry (`generate`) and those that pass an incoming one on (`propagate`,
/// disjoint from `generate`): carry_in(i + 1) = generate(i) | (propagate(i) & carry_in(i)).
/// One addition does the ripple, in constant time.
#[inline(always)]
pub(super) fn carries(generate: u128, propagate: u128) -> u128 {
    (generate << 1).wrapping_add(propagate) ^ propagate
}

#[cfg(test)]
mod tests {
    use super::carries;

    /// The sequential definition.
    fn carries_reference(generate: u128, propagate: u128) -> u128 {
        let mut out = 0u128;
        let mut c = 0u128;
        for i in 0..127 {
            c = ((generate >> i) & 1) | ((propagate >> i) & 1 & c);
            out |= c << (i + 1);
        }
        out
    }

    #[test]
    fn carries_ripple_like_the_definition() {
        // Every disjoint (generate, propagate) pair over 8 digits (3^8 cases) …
        for code in 0..6561u32 {
            let (mut g, mut p, mut c) = (0u128, 0u128, code);
            for i in 0..8 {
                match c % 3 {
                    1 => g |= 1 << i,
                    2 => p |= 1 << i,
                    _ => {}
                }
                c /= 3;
            }
            assert_eq!(carries(g, p), carries_reference(g, p), "{g:b} {p:b}");
        }
        // … and long chains across 80 digits.
        let mut s = 0x1234_5678_9abc_def0u64;
        for _ in 0..20_000 {
            let mut r = || {
                s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = s;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            };
            let mask = (1u128 << 80) - 1;
            let p = ((u128::from(r()) << 64 | u128::from(r())) | u128::from(r())) & mask;
            let g = (u128::from(r()) << 64 | u128::from(r())) & u128::from(r()) & !p & mask;
            assert_eq!(carries(g, p), carries_reference(g, p));
        }
        let all = (1u128 << 80) - 1;
        assert_eq!(carries(1, all & !1), all << 1);
    }
}
