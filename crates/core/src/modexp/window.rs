//! The fixed-window exponentiation on the IFMA kernel, and conversions to and from its
//! radix-2^52 digits (x86-64 only; see the module documentation in `mod.rs`).

use crypto_bigint::{BoxedUint, NonZero, Odd};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use core::arch::x86_64::{
    _mm512_and_si512, _mm512_or_si512, _mm512_set1_epi64, _mm512_setzero_si512,
};

use super::ifma::{self, Ctx, M52, Num, Vector, amm, to_vector};

/// Window width in bits (a table of 32 powers; one multiplication per 5 squarings).
const WINDOW: usize = 5;
const TABLE: usize = 1 << WINDOW;

/// See `super::partial`; `e` as little-endian 64-bit words.
pub(super) fn partial(
    n: &Odd<BoxedUint>,
    x: &BoxedUint,
    e: &[u64],
    exp_bits: usize,
) -> Option<BoxedUint> {
    Prepared::new(n)?.pow(x, e, exp_bits, true)
}

/// A modulus prepared for the kernel: its digits, −N⁻¹ mod 2^52 and R² mod N, computed once
/// (from N alone: public, variable time is fine) and reused by every exponentiation modulo N.
pub(super) struct Prepared {
    /// N as little-endian 64-bit words.
    words: Vec<u64>,
    /// Digits D and vectors V = ⌈D/8⌉ (functions of |N| only).
    d: usize,
    v: usize,
    k0: u64,
    /// N and R² mod N as 8·V digits each.
    n_digits: Vec<u64>,
    rr_digits: Vec<u64>,
}

/// Prepared values of a secret modulus must not outlive it in memory.
impl Drop for Prepared {
    fn drop(&mut self) {
        self.words.zeroize();
        self.n_digits.zeroize();
        self.rr_digits.zeroize();
        self.k0.zeroize();
    }
}

impl Prepared {
    /// `None` when the CPU lacks IFMA or |N| is outside the instantiated sizes.
    pub(super) fn new(n: &Odd<BoxedUint>) -> Option<Prepared> {
        let bits = n.as_ref().bit_width_vartime() as usize; // N is public
        Prepared::build(n, bits, false)
    }

    /// For a secret modulus (a Paillier key's p²): the sizes come from its public precision
    /// and R² mod N from a constant-time division.
    pub(super) fn new_secret(n: &Odd<BoxedUint>) -> Option<Prepared> {
        Prepared::build(n, n.as_ref().bits_precision() as usize, true)
    }

    fn build(n: &Odd<BoxedUint>, bits: usize, secret: bool) -> Option<Prepared> {
        if !ifma::available() {
            return None;
        }
        // R = 2^(52·D) > 4N.
        let d = (bits + 2).div_ceil(52);
        // 1024-bit: 3; 1536: 4; 2048: 5; 3072: 8; 4096: 10; Paillier-3072's N², 6144: 15.
        // At most 16: the kernel's carry masks hold 8 lanes per vector in a u128.
        let v = d.div_ceil(8);
        if !(2..=16).contains(&v) {
            return None;
        }
        let words = n.as_ref().as_words().to_vec();
        let r_bits = u32::try_from(52 * d).ok()?;
        let rr = {
            let wide = BoxedUint::one_with_precision(2 * r_bits + 64).shl_vartime(2 * r_bits)?;
            let nz = NonZero::new(n.as_ref().clone()).into_option()?;
            if secret {
                wide.rem(&nz)
            } else {
                wide.rem_vartime(&nz)
            }
        };
        let flat = |w: &[u64]| -> Vec<u64> {
            let mut out = vec![0u64; 8 * v];
            for (i, o) in out.iter_mut().enumerate().take(d) {
                *o = digit_of(w, i);
            }
            out
        };
        Some(Prepared {
            k0: neg_inv(words[0]) & M52,
            n_digits: flat(&words),
            rr_digits: flat(rr.as_words()),
            words,
            d,
            v,
        })
    }

    /// x^e mod N (x^(2e) when `square`), reading exactly the low `exp_bits` bits of `e`
    /// (little-endian words). `x` < N. `None` only for `exp_bits` = 0 or wider than `e`.
    pub(super) fn pow(
        &self,
        x: &BoxedUint,
        e: &[u64],
        exp_bits: usize,
        square: bool,
    ) -> Option<BoxedUint> {
        if exp_bits == 0 || exp_bits > 64 * e.len() {
            return None;
        }
        match self.v {
            2 => self.run::<2>(x, e, exp_bits, square),
            3 => self.run::<3>(x, e, exp_bits, square),
            4 => self.run::<4>(x, e, exp_bits, square),
            5 => self.run::<5>(x, e, exp_bits, square),
            6 => self.run::<6>(x, e, exp_bits, square),
            7 => self.run::<7>(x, e, exp_bits, square),
            8 => self.run::<8>(x, e, exp_bits, square),
            9 => self.run::<9>(x, e, exp_bits, square),
            10 => self.run::<10>(x, e, exp_bits, square),
            11 => self.run::<11>(x, e, exp_bits, square),
            12 => self.run::<12>(x, e, exp_bits, square),
            13 => self.run::<13>(x, e, exp_bits, square),
            14 => self.run::<14>(x, e, exp_bits, square),
            15 => self.run::<15>(x, e, exp_bits, square),
            16 => self.run::<16>(x, e, exp_bits, square),
            _ => None,
        }
    }

    fn run<const V: usize>(
        &self,
        x: &BoxedUint,
        e: &[u64],
        exp_bits: usize,
        square: bool,
    ) -> Option<BoxedUint> {
        let num = |flat: &[u64]| {
            let mut out = Num::<V>::ZERO;
            for (o, c) in out.0.iter_mut().zip(flat.chunks_exact(8)) {
                o.copy_from_slice(c);
            }
            out
        };
        let consts = Consts::<V> {
            n: num(&self.n_digits),
            rr: num(&self.rr_digits),
            k0: self.k0,
            d: self.d,
        };
        let (words, len, d) = (&self.words, self.words.len(), self.d);

        if !ifma::available() {
            return None;
        }
        // SAFETY: `exp` only needs the CPU to have avx512f and avx512ifma, checked just above.
        #[allow(unsafe_code)]
        let mut out = unsafe { exp(&consts, x.as_words(), e, exp_bits, square) };

        // out ≤ N (amm(z, 1) < N + 1); subtract N once under a mask to make it < N.
        let mut words_out = from_digits(&out, d, len);
        out.0.zeroize();
        let mut diff = vec![0u64; len];
        let mut borrow = 0u64;
        for j in 0..len {
            let (s, b1) = words_out[j].overflowing_sub(words[j]);
            let (s, b2) = s.overflowing_sub(borrow);
            diff[j] = s;
            borrow = u64::from(b1 | b2);
        }
        let keep = 0u64.wrapping_sub(borrow); // all ones iff out < N
        for j in 0..len {
            words_out[j] = (words_out[j] & keep) | (diff[j] & !keep);
        }
        diff.zeroize();
        let result = BoxedUint::from_words(words_out.iter().copied());
        words_out.zeroize();
        Some(result)
    }
}

/// Digit i (52 bits at bit 52·i) of little-endian 64-bit words (a fixed bit position).
fn digit_of(words: &[u64], i: usize) -> u64 {
    let (k, s) = ((52 * i) / 64, (52 * i) % 64);
    let lo = words.get(k).copied().unwrap_or(0) >> s;
    let hi = if s > 12 {
        words.get(k + 1).copied().unwrap_or(0) << (64 - s)
    } else {
        0
    };
    (lo | hi) & M52
}

/// Little-endian 64-bit words → D normalised 52-bit digits (fixed bit positions).
fn to_digits<const V: usize>(words: &[u64], d: usize) -> Num<V> {
    let mut out = Num::<V>::ZERO;
    for i in 0..d {
        *out.digit_mut(i) = digit_of(words, i);
    }
    out
}

/// Normalised digits → `len` little-endian 64-bit words (the value must fit).
fn from_digits<const V: usize>(x: &Num<V>, d: usize, len: usize) -> Vec<u64> {
    let mut out = vec![0u64; len];
    for i in 0..d {
        let (k, s) = ((52 * i) / 64, (52 * i) % 64);
        let v = x.digit(i);
        if k < len {
            out[k] |= v << s;
        }
        if s > 12 && k + 1 < len {
            out[k + 1] |= v >> (64 - s);
        }
    }
    out
}

/// The `WINDOW` bits of `e` at bit `pos` (public position; bits past the end read as 0).
fn window_at(e: &[u64], pos: usize) -> u64 {
    let (k, s) = (pos / 64, pos % 64);
    let mut v = e[k] >> s;
    if s + WINDOW > 64 && k + 1 < e.len() {
        v |= e[k + 1] << (64 - s);
    }
    v & ((1u64 << WINDOW) - 1)
}

/// table[idx], reading every entry (addresses independent of idx).
#[target_feature(enable = "avx512f")]
fn select<const V: usize>(table: &[Vector<V>; TABLE], idx: u64) -> Vector<V> {
    let mut out = [_mm512_setzero_si512(); V];
    for (i, entry) in table.iter().enumerate() {
        let mask = 0u64.wrapping_sub(u64::from((i as u64).ct_eq(&idx).unwrap_u8()));
        let mask = _mm512_set1_epi64(mask as i64);
        for (o, &t) in out.iter_mut().zip(entry.iter()) {
            *o = _mm512_or_si512(*o, _mm512_and_si512(t, mask));
        }
    }
    out
}

/// N, R² mod N (D digits each), −N⁻¹ mod 2^52 and D: the kernel's public constants.
struct Consts<const V: usize> {
    n: Num<V>,
    rr: Num<V>,
    k0: u64,
    d: usize,
}

/// The exponentiation proper, in the kernel's Montgomery domain, on numbers in vector form
/// from entry to exit. `x` as little-endian words.
/// Returns x^e mod N (x^(2e) when `square`) as normalised digits with value ≤ N.
///
/// The one entry from feature-detected code into the kernel (see `run`).
#[target_feature(enable = "avx512f,avx512ifma")]
fn exp<const V: usize>(
    consts: &Consts<V>,
    x: &[u64],
    e: &[u64],
    exp_bits: usize,
    square: bool,
) -> Num<V> {
    let d = consts.d;
    let ctx = Ctx::<V> {
        n: to_vector(&consts.n),
        n0: consts.n.digit(0),
        k0: consts.k0,
        d,
    };
    let one = ifma::one::<V>();
    let rr = to_vector(&consts.rr);

    let mut xd = to_digits::<V>(x, d);
    let mut xv = to_vector(&xd);
    xd.0.zeroize();
    // table[i] = x^i·R mod N (each < 2N).
    let mut table = [[_mm512_setzero_si512(); V]; TABLE];
    table[0] = amm(&ctx, &one, &rr);
    table[1] = amm(&ctx, &xv, &rr);
    xv.zeroize();
    for i in 2..TABLE {
        table[i] = if i % 2 == 0 {
            amm(&ctx, &table[i / 2], &table[i / 2])
        } else {
            amm(&ctx, &table[i - 1], &table[1])
        };
    }

    let windows = exp_bits.div_ceil(WINDOW);
    let top_pos = (windows - 1) * WINDOW;
    let top_mask = (1u64 << (exp_bits - top_pos)) - 1;
    let mut z = select(&table, window_at(e, top_pos) & top_mask);
    let mut p = [_mm512_setzero_si512(); V];
    for w in (0..windows - 1).rev() {
        for _ in 0..WINDOW {
            z = amm(&ctx, &z, &z);
        }
        p = select(&table, window_at(e, w * WINDOW));
        z = amm(&ctx, &z, &p);
    }
    // The partials' final squaring, x^(2e), so a share's parity never shows (`square` is a
    // public choice of the caller, never data).
    if square {
        z = amm(&ctx, &z, &z);
    }
    // Leave the Montgomery domain: amm(z, 1) = z·R⁻¹ mod N, ≤ N.
    let mut t = amm(&ctx, &z, &one);
    let out = ifma::from_vector(&t);
    table.zeroize();
    z.zeroize();
    p.zeroize();
    t.zeroize();
    out
}

/// −N⁻¹ mod 2^64 for odd n0 (Newton–Hensel lifting; N is public).
fn neg_inv(n0: u64) -> u64 {
    debug_assert!(n0 & 1 == 1);
    // x = n0 is right mod 2^3 for odd n0; each step doubles the correct bits: 3→…→96.
    let mut x = n0;
    for _ in 0..5 {
        x = x.wrapping_mul(2u64.wrapping_sub(n0.wrapping_mul(x)));
    }
    x.wrapping_neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};

    /// Deterministic words (splitmix64).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        /// A uniform value of at most `bits` bits in `words` words.
        fn below_bits(&mut self, bits: usize, words: usize) -> Vec<u64> {
            let mut v: Vec<u64> = (0..words).map(|_| self.next()).collect();
            for (k, w) in v.iter_mut().enumerate() {
                let lo = 64 * k;
                if lo >= bits {
                    *w = 0;
                } else if bits - lo < 64 {
                    *w &= (1u64 << (bits - lo)) - 1;
                }
            }
            v
        }
    }

    /// x^(2e) mod N through crypto-bigint's plain exponentiation.
    fn reference(n: &Odd<BoxedUint>, x: &BoxedUint, e: &[u64], exp_bits: usize) -> BoxedUint {
        let params = BoxedMontyParams::new_vartime(n.clone());
        let e = BoxedUint::from_words(e.iter().copied());
        BoxedMontyForm::new(x.clone(), &params)
            .pow_bounded_exp(&e, exp_bits as u32)
            .square()
            .retrieve()
    }

    fn odd(words: Vec<u64>) -> Odd<BoxedUint> {
        BoxedUint::from_words(words).to_odd().unwrap()
    }

    fn check(n: &Odd<BoxedUint>, x: &BoxedUint, e: &[u64], exp_bits: usize) {
        let want = reference(n, x, e, exp_bits);
        match partial(n, x, e, exp_bits) {
            Some(got) => assert_eq!(got, want, "bits {}", n.as_ref().bit_width_vartime()),
            None => {
                let bits = n.as_ref().bit_width_vartime() as usize;
                let v = (bits + 2).div_ceil(52).div_ceil(8);
                assert!(
                    !ifma::available() || !(2..=16).contains(&v),
                    "no kernel for {bits}"
                );
            }
        }
    }

    #[test]
    fn neg_inv_is_the_negated_inverse() {
        let mut rng = Rng(1);
        for _ in 0..1000 {
            let n0 = rng.next() | 1;
            assert_eq!(n0.wrapping_mul(neg_inv(n0)), u64::MAX);
        }
    }

    #[test]
    fn digits_round_trip() {
        let mut rng = Rng(2);
        for len in [2usize, 5, 16, 32, 48, 64] {
            let words: Vec<u64> = (0..len).map(|_| rng.next()).collect();
            let d = (64 * len + 2).div_ceil(52);
            if d.div_ceil(8) > 10 {
                continue;
            }
            let back = match d.div_ceil(8) {
                1 => from_digits(&to_digits::<1>(&words, d), d, len),
                2 => from_digits(&to_digits::<2>(&words, d), d, len),
                3 => from_digits(&to_digits::<3>(&words, d), d, len),
                5 => from_digits(&to_digits::<5>(&words, d), d, len),
                8 => from_digits(&to_digits::<8>(&words, d), d, len),
                10 => from_digits(&to_digits::<10>(&words, d), d, len),
                v => panic!("untested width {v}"),
            };
            assert_eq!(back, words);
        }
    }

    #[test]
    fn windows_read_the_right_bits() {
        let e = [0x8000_0000_0000_0001u64, 0x3];
        assert_eq!(window_at(&e, 0), 1);
        assert_eq!(window_at(&e, 60), 0b11000);
        assert_eq!(window_at(&e, 63), 0b111);
        assert_eq!(window_at(&e, 65), 1);
        assert_eq!(window_at(&e, 66), 0);
    }

    #[test]
    fn matches_crypto_bigint_at_many_sizes() {
        let mut rng = Rng(3);
        // Sizes around every instantiated width, including digit-count boundaries.
        for bits in [
            415usize, 510, 1022, 1023, 1024, 1534, 1536, 2046, 2047, 2048, 2050, 2558, 3070, 3072,
            3100, 3582, 4094, 4096, 4158, 4159, 4200, 6144, 6600, 8192,
        ] {
            let words = bits.div_ceil(64);
            let mut nw = rng.below_bits(bits, words);
            nw[0] |= 1;
            nw[(bits - 1) / 64] |= 1u64 << ((bits - 1) % 64);
            let n = odd(nw);
            let exp_bits = bits + 224;
            let e = rng.below_bits(exp_bits, exp_bits.div_ceil(64));
            let x = BoxedUint::from_words(rng.below_bits(bits - 1, words));
            check(&n, &x, &e, exp_bits);
        }
    }

    #[test]
    fn edge_operands() {
        let mut rng = Rng(4);
        for bits in [1024usize, 2048, 3072] {
            let words = bits / 64;
            // N = 2^bits − 1 (all ones) and a random N.
            let mut random_n = rng.below_bits(bits, words);
            random_n[0] |= 1;
            random_n[words - 1] |= 1 << 63;
            for nw in [vec![u64::MAX; words], random_n] {
                let n = odd(nw.clone());
                let mut n_minus_1 = nw.clone();
                n_minus_1[0] -= 1;
                let xs = [
                    BoxedUint::from_words((0..words).map(|i| u64::from(i == 0))),
                    BoxedUint::from_words(n_minus_1),
                    BoxedUint::from_words(rng.below_bits(bits - 1, words)),
                ];
                let exp_bits = bits + 224;
                let ew = exp_bits.div_ceil(64);
                let es = [
                    vec![0u64; ew],
                    (0..ew).map(|i| u64::from(i == 0)).collect(),
                    rng.below_bits(exp_bits, ew),
                    {
                        let mut v = vec![u64::MAX; ew];
                        v[ew - 1] = u64::MAX >> (64 * ew - exp_bits);
                        v
                    },
                ];
                for x in &xs {
                    for e in &es {
                        check(&n, x, e, exp_bits);
                    }
                }
                // Short exponent widths (partial top windows) and one wider than read.
                for eb in [1usize, 4, 5, 6, 9, 64, 65] {
                    check(&n, &xs[2], &es[3], eb);
                }
            }
        }
    }

    #[test]
    fn plain_powers_match_crypto_bigint() {
        let mut rng = Rng(5);
        for bits in [1022usize, 1024, 2048, 3072, 4096] {
            let words = bits.div_ceil(64);
            let mut nw = rng.below_bits(bits, words);
            nw[0] |= 1;
            nw[(bits - 1) / 64] |= 1u64 << ((bits - 1) % 64);
            let n = odd(nw);
            let params = BoxedMontyParams::new_vartime(n.clone());
            let Some(prep) = Prepared::new(&n) else {
                assert!(!ifma::available());
                return;
            };
            let x = BoxedUint::from_words(rng.below_bits(bits - 1, words));
            for exp_bits in [1usize, 5, 63, bits / 2, bits - 2, bits] {
                let e = rng.below_bits(exp_bits, exp_bits.div_ceil(64));
                let want = BoxedMontyForm::new(x.clone(), &params)
                    .pow_bounded_exp(&BoxedUint::from_words(e.iter().copied()), exp_bits as u32)
                    .retrieve();
                assert_eq!(prep.pow(&x, &e, exp_bits, false), Some(want.clone()));
                let ew = BoxedUint::from_words(e.iter().copied());
                assert_eq!(super::super::pow_ct(&x, &ew, exp_bits, &n), Some(want));
            }
        }
    }
}
