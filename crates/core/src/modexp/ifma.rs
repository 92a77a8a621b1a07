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
//! - After each product the digits are normalised (carries propagated) so the next product
//!   reads 52-bit digits, as the IFMA instructions use only the low 52 bits of each input.
//!
//! Constant time: the instruction sequence depends only on V and D (public, from |N|);
//! IFMA, shifts and adds run in data-independent time; carries are arithmetic.

use core::arch::x86_64::*;

/// Digit mask.
pub(super) const M52: u64 = (1u64 << 52) - 1;

/// A number as V vectors of 8 digits, little-endian (digit 8k + j is lane j of vector k).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
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
    pub(super) n: Num<V>,
    /// −N⁻¹ mod 2^52.
    pub(super) k0: u64,
    /// Number of digits D (≤ 8·V); R = 2^(52·D).
    pub(super) d: usize,
}

/// out = amm(a, b). `a`, `b` normalised with value < 2N; `out` normalised, < 2N.
///
/// # Safety
/// The CPU must support avx512f and avx512ifma (see `available`).
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) unsafe fn amm<const V: usize>(ctx: &Ctx<V>, a: &Num<V>, b: &Num<V>, out: &mut Num<V>) {
    let mut av = [_mm512_setzero_si512(); V];
    let mut nv = [_mm512_setzero_si512(); V];
    for k in 0..V {
        // SAFETY: `a.0[k]` and `ctx.n.0[k]` are 64 readable bytes (8 u64s); loadu has no
        // alignment requirement.
        unsafe {
            av[k] = _mm512_loadu_si512(a.0[k].as_ptr().cast());
            nv[k] = _mm512_loadu_si512(ctx.n.0[k].as_ptr().cast());
        }
    }
    let a0 = a.0[0][0];
    let n0 = ctx.n.0[0][0];
    let mut acc = [_mm512_setzero_si512(); V];
    let zero = _mm512_setzero_si512();

    for i in 0..ctx.d {
        let bi = b.digit(i);
        // The low digit after adding the low halves of a₀·bᵢ and y·n₀, computed on the
        // scalar side so that y does not wait for the vector additions.
        let x0 = _mm_cvtsi128_si64(_mm512_castsi512_si128(acc[0])) as u64;
        let t0 = x0.wrapping_add(a0.wrapping_mul(bi) & M52);
        let y = t0.wrapping_mul(ctx.k0) & M52;
        let carry = t0.wrapping_add(n0.wrapping_mul(y) & M52) >> 52;

        let bv = _mm512_set1_epi64(bi as i64);
        let yv = _mm512_set1_epi64(y as i64);
        for k in 0..V {
            acc[k] = _mm512_madd52lo_epu64(acc[k], av[k], bv);
            acc[k] = _mm512_madd52lo_epu64(acc[k], nv[k], yv);
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
            acc[k] = _mm512_madd52hi_epu64(acc[k], av[k], bv);
            acc[k] = _mm512_madd52hi_epu64(acc[k], nv[k], yv);
        }
    }

    for (o, v) in out.0.iter_mut().zip(acc) {
        // SAFETY: `o` is 64 writable bytes; storeu has no alignment requirement.
        unsafe { _mm512_storeu_si512(o.as_mut_ptr().cast(), v) };
    }
    // Normalise: propagate carries. The value is < 2N < R, so nothing leaves digit D − 1;
    // lanes at and above D stay zero (a and N have zero digits there).
    let mut c = 0u64;
    for i in 0..ctx.d {
        let v = out.digit(i) + c;
        *out.digit_mut(i) = v & M52;
        c = v >> 52;
    }
    debug_assert_eq!(c, 0);
}
