//! Public number theory: small primes, the BGW prime, trial division of N, Jacobi symbols.
//! Everything here handles public values only, so variable-time code is fine.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crypto_bigint::{BoxedUint, Limb, NonZero, Reciprocal, Resize};

/// Public trial division of N reaches this bound (CRYPTO-NOTES §1.4: 2^16 was the sweet spot).
pub const TRIAL_DIVISION_BOUND: u32 = 1 << 16;

/// All primes < limit (sieve of Eratosthenes).
pub(crate) fn primes_below(limit: u32) -> Vec<u32> {
    let limit = limit as usize;
    let mut composite = vec![false; limit];
    let mut out = Vec::new();
    for i in 2..limit {
        if !composite[i] {
            out.push(i as u32);
            let mut j = i * i;
            while j < limit {
                composite[j] = true;
                j += i;
            }
        }
    }
    out
}

/// Most 64-bit limbs of a trial-divided number (|N| ≤ 8192, the BGW prime's search ≤ 4105
/// bits, plus spare precision limbs).
const TRIAL_MAX_LIMBS: usize = 136;

/// One group of trial primes: their product m < 2^64 and, per prime ℓ, ℓ⁻¹ mod 2^64 and
/// ⌊(2^64 − 1)/ℓ⌋ (r ≡ 0 mod ℓ iff r·ℓ⁻¹ mod 2^64 ≤ ⌊(2^64 − 1)/ℓ⌋, for odd ℓ).
struct TrialGroup {
    m: u64,
    primes: Vec<(u64, u64)>,
}

/// The primes 3 ≤ ℓ < TRIAL_DIVISION_BOUND in groups whose product fits a limb, with
/// 2^(64k) mod m for every limb position k (row-major, TRIAL_MAX_LIMBS per group): N mod m is
/// then Σ N_k·(2^(64k) mod m), independent multiply-adds instead of a chain of divisions.
struct TrialTable {
    groups: Vec<TrialGroup>,
    powers: Vec<u64>,
}

fn trial_table() -> &'static TrialTable {
    static T: OnceLock<TrialTable> = OnceLock::new();
    T.get_or_init(|| {
        let mut groups = Vec::new();
        let (mut prod, mut group) = (1u64, Vec::new());
        let push = |groups: &mut Vec<TrialGroup>, m: u64, group: &mut Vec<u64>| {
            let primes = group
                .drain(..)
                .map(|l| (inv_mod_2_64(l), u64::MAX / l))
                .collect();
            groups.push(TrialGroup { m, primes });
        };
        for l in primes_below(TRIAL_DIVISION_BOUND).into_iter().skip(1) {
            let l = l as u64;
            if prod.checked_mul(l).is_none() {
                push(&mut groups, prod, &mut group);
                prod = 1;
            }
            prod *= l;
            group.push(l);
        }
        push(&mut groups, prod, &mut group);
        let mut powers = Vec::with_capacity(groups.len() * TRIAL_MAX_LIMBS);
        for g in &groups {
            let mut c = 1u64 % g.m;
            for _ in 0..TRIAL_MAX_LIMBS {
                powers.push(c);
                c = (((c as u128) << 64) % g.m as u128) as u64;
            }
        }
        TrialTable { groups, powers }
    })
}

/// ℓ⁻¹ mod 2^64 for odd ℓ (Newton–Hensel: each step doubles the correct low bits).
fn inv_mod_2_64(l: u64) -> u64 {
    let mut x = l;
    for _ in 0..5 {
        x = x.wrapping_mul(2u64.wrapping_sub(l.wrapping_mul(x)));
    }
    x
}

/// Σ words_k·powers_k mod m (< 2^64): the number's residue mod m.
fn residue(words: &[u64], powers: &[u64], m: u64) -> u64 {
    // Each product < 2^128; the overflows of the 128-bit sum are counted in `top`.
    let (mut acc, mut top) = (0u128, 0u64);
    for (&w, &c) in words.iter().zip(powers) {
        let (s, o) = acc.overflowing_add(u128::from(w) * u128::from(c));
        acc = s;
        top += u64::from(o);
    }
    let m = u128::from(m);
    let hi = ((u128::from(top) << 64) | (acc >> 64)) % m;
    (((hi << 64) | (acc & u128::from(u64::MAX))) % m) as u64
}

/// True when the odd N has no prime factor below TRIAL_DIVISION_BOUND. Stops at the first
/// factor: most rejected N have a small one (public value, so early exit is fine).
pub(crate) fn passes_trial_division(n: &BoxedUint) -> bool {
    let words = n.as_words();
    let len = words.len() - words.iter().rev().take_while(|&&w| w == 0).count();
    let words = &words[..len];
    if len > TRIAL_MAX_LIMBS {
        return passes_trial_division_slow(n);
    }
    let t = trial_table();
    t.groups
        .iter()
        .zip(t.powers.chunks_exact(TRIAL_MAX_LIMBS))
        .all(|(g, powers)| {
            let r = residue(words, powers, g.m);
            g.primes.iter().all(|&(inv, lim)| r.wrapping_mul(inv) > lim)
        })
}

/// The same by a chain of single-limb divisions, for numbers wider than the table.
fn passes_trial_division_slow(n: &BoxedUint) -> bool {
    trial_table().groups.iter().all(|g| {
        let recip = Reciprocal::new(NonZero::new(Limb(g.m)).expect("nonzero"));
        let r = n.rem_limb_with_reciprocal(&recip).0;
        g.primes.iter().all(|&(inv, lim)| r.wrapping_mul(inv) > lim)
    })
}

/// nextprime(2^b) − 2^b for the sizes keyfrag uses (K = 512..2048, n ≤ 16), so a cell does
/// not spend seconds searching at start-up; the test `known_bgw_primes` re-derives them.
const KNOWN_OFFSETS: [(u32, u64); 12] = [
    (1029, 639),
    (1031, 23),
    (1033, 227),
    (2053, 4299),
    (2055, 165),
    (2057, 1275),
    (3077, 2475),
    (3079, 771),
    (3081, 77),
    (4101, 231),
    (4103, 621),
    (4105, 5459),
];

fn power_of_two_plus(bits: u32, offset: u64) -> BoxedUint {
    let precision = bits + 64;
    BoxedUint::one_with_precision(precision)
        .shl_vartime(bits)
        .expect("fits")
        .wrapping_add(BoxedUint::from(offset).resize_unchecked(precision))
}

/// The BGW prime: the smallest prime above 2^bits. Deterministic and public, cached per size.
pub(crate) fn bgw_prime(bits: u32) -> BoxedUint {
    if let Some(&(_, off)) = KNOWN_OFFSETS.iter().find(|(b, _)| *b == bits) {
        return power_of_two_plus(bits, off);
    }
    search_prime(bits)
}

fn search_prime(bits: u32) -> BoxedUint {
    static CACHE: OnceLock<Mutex<HashMap<u32, BoxedUint>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(p) = cache.lock().expect("cache lock").get(&bits) {
        return p.clone();
    }
    let precision = bits + 64;
    let mut c = power_of_two_plus(bits, 1);
    let two = BoxedUint::from(2u64).resize_unchecked(precision);
    while !(passes_trial_division(&c) && crypto_primes::is_prime(crypto_primes::Flavor::Any, &c)) {
        c = c.wrapping_add(&two);
    }
    cache.lock().expect("cache lock").insert(bits, c.clone());
    c
}

/// Jacobi symbol (a/n) for odd n > 0, variable time (public values only): the binary
/// algorithm on limbs (remove twos, reciprocity on swap, subtract), with a single-limb
/// remainder whenever n fits a limb and on u64 once both do.
pub(crate) fn jacobi_vartime(a: &BoxedUint, n: &BoxedUint) -> i8 {
    let trim = |w: &[u64]| -> Vec<u64> {
        let len = w.len() - w.iter().rev().take_while(|&&x| x == 0).count();
        w[..len].to_vec()
    };
    let mut n = trim(n.as_words());
    let mut a = trim(a.as_words());
    if !lt_words(&a, &n) {
        let nb = BoxedUint::from_words(n.iter().copied());
        let prec = nb.bits_precision().max(64 * a.len() as u32);
        let wide = BoxedUint::from_words(a.iter().copied()).resize_unchecked(prec);
        let nz = NonZero::new(nb.resize_unchecked(prec)).expect("n > 0");
        a = trim(wide.rem_vartime(&nz).as_words());
    }
    let mut t = 1i8;
    loop {
        if n.len() == 1 {
            let r = a.iter().rev().fold(0u128, |r, &x| {
                ((r << 64) | u128::from(x)) % u128::from(n[0])
            });
            return t * jacobi_u64(r as u64, n[0]);
        }
        if a.is_empty() {
            return 0; // n > 1 divides a
        }
        let zero_words = a.iter().take_while(|&&x| x == 0).count();
        let tz = 64 * zero_words + a[zero_words].trailing_zeros() as usize;
        if tz > 0 {
            shr_words(&mut a, tz);
            if tz % 2 == 1 && matches!(n[0] & 7, 3 | 5) {
                t = -t;
            }
        }
        if lt_words(&a, &n) {
            std::mem::swap(&mut a, &mut n);
            if a[0] & 3 == 3 && n[0] & 3 == 3 {
                t = -t;
            }
        }
        sub_words(&mut a, &n);
    }
}

/// a < b for trimmed little-endian limbs.
fn lt_words(a: &[u64], b: &[u64]) -> bool {
    if a.len() != b.len() {
        return a.len() < b.len();
    }
    a.iter().rev().cmp(b.iter().rev()) == std::cmp::Ordering::Less
}

/// a −= b (a ≥ b), then trim.
fn sub_words(a: &mut Vec<u64>, b: &[u64]) {
    let mut borrow = false;
    for (i, x) in a.iter_mut().enumerate() {
        let y = b.get(i).copied().unwrap_or(0);
        let (d, b1) = x.overflowing_sub(y);
        let (d, b2) = d.overflowing_sub(u64::from(borrow));
        *x = d;
        borrow = b1 | b2;
    }
    while a.last() == Some(&0) {
        a.pop();
    }
}

/// a >>= k (k less than a's width), then trim.
fn shr_words(a: &mut Vec<u64>, k: usize) {
    let (w, b) = (k / 64, k % 64);
    a.drain(..w);
    if b > 0 {
        for i in 0..a.len() {
            let hi = a.get(i + 1).copied().unwrap_or(0);
            a[i] = (a[i] >> b) | (hi << (64 - b));
        }
    }
    while a.last() == Some(&0) {
        a.pop();
    }
}

/// (a/n) for odd n > 0, on words.
fn jacobi_u64(mut a: u64, mut n: u64) -> i8 {
    a %= n;
    let mut t = 1i8;
    while a != 0 {
        let tz = a.trailing_zeros();
        a >>= tz;
        if tz % 2 == 1 && matches!(n & 7, 3 | 5) {
            t = -t;
        }
        if a < n {
            std::mem::swap(&mut a, &mut n);
            if a & 3 == 3 && n & 3 == 3 {
                t = -t;
            }
        }
        a -= n;
    }
    if n == 1 { t } else { 0 }
}

/// The Euclidean version (the reference for the tests).
#[cfg(test)]
fn jacobi_euclid(a: &BoxedUint, n: &BoxedUint) -> i8 {
    let prec = n.bits_precision().max(a.bits_precision());
    let mut n = n.resize_unchecked(prec);
    let mut a = a
        .resize_unchecked(prec)
        .rem_vartime(&NonZero::new(n.clone()).expect("n > 0"));
    let mut sign = 1i8;
    let one = BoxedUint::one_with_precision(prec);
    loop {
        if bool::from(a.is_zero()) {
            return if n == one { sign } else { 0 };
        }
        let tz = a.trailing_zeros_vartime();
        a = a.shr_vartime(tz).expect("shift < precision");
        let n_mod8 = n.as_words()[0] & 7;
        if tz % 2 == 1 && (n_mod8 == 3 || n_mod8 == 5) {
            sign = -sign;
        }
        if a.as_words()[0] & 3 == 3 && n_mod8 & 3 == 3 {
            sign = -sign;
        }
        // (a/n) → (n mod a / a)
        let r = n.rem_vartime(&NonZero::new(a.clone()).expect("a > 0"));
        n = a;
        a = r;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_primes_and_jacobi() {
        assert_eq!(primes_below(20), vec![2, 3, 5, 7, 11, 13, 17, 19]);
        // (2/7) = 1, (3/7) = −1, (5/21) = (5/3)(5/7) = (−1)(−1) = 1, (7/21) = 0.
        let j = |a: u64, n: u64| jacobi_vartime(&BoxedUint::from(a), &BoxedUint::from(n));
        assert_eq!(j(2, 7), 1);
        assert_eq!(j(3, 7), -1);
        assert_eq!(j(5, 21), 1);
        assert_eq!(j(7, 21), 0);
        assert_eq!(j(1001, 9907), -1);
        assert_eq!(j(19, 45), 1);
    }

    #[test]
    fn binary_jacobi_matches_euclid() {
        let mut s = 0x5555_0123_4567_89abu64;
        let mut next = || {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        for (la, ln) in [
            (1usize, 1usize),
            (1, 2),
            (2, 1),
            (3, 3),
            (16, 32),
            (32, 32),
            (34, 32),
            (1, 32),
        ] {
            for _ in 0..200 {
                let mut nw: Vec<u64> = (0..ln).map(|_| next()).collect();
                nw[0] |= 1;
                let mut aw: Vec<u64> = (0..la).map(|_| next()).collect();
                if next() % 4 == 0 {
                    aw[0] &= 0xff; // small low limbs (shared factors: the small loop below)
                }
                let n = BoxedUint::from_words(nw);
                let a = BoxedUint::from_words(aw);
                assert_eq!(jacobi_vartime(&a, &n), jacobi_euclid(&a, &n));
            }
        }
        for a in 0..200u64 {
            for n in (1..200u64).step_by(2) {
                let (a, n) = (BoxedUint::from(a), BoxedUint::from(n));
                assert_eq!(jacobi_vartime(&a, &n), jacobi_euclid(&a, &n));
            }
        }
    }

    #[test]
    fn trial_division_matches_plain_remainders() {
        // Products of two primes around the bound, odd numbers of every width, and the slow
        // path agree with plain remainders.
        let primes: Vec<u64> = primes_below(TRIAL_DIVISION_BOUND)
            .into_iter()
            .skip(1)
            .map(u64::from)
            .collect();
        let mut s = 0x0123_4567_89ab_cdefu64;
        let mut next = || {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        for limbs in [1usize, 2, 16, 32, 33, 64, 128] {
            for _ in 0..40 {
                let mut w: Vec<u64> = (0..limbs).map(|_| next()).collect();
                w[0] |= 1;
                let n = BoxedUint::from_words(w.clone());
                let want = primes.iter().all(|&l| {
                    w.iter()
                        .rev()
                        .fold(0u128, |r, &x| ((r << 64) | u128::from(x)) % u128::from(l))
                        != 0
                });
                assert_eq!(passes_trial_division(&n), want, "{limbs}");
                assert_eq!(passes_trial_division_slow(&n), want, "{limbs}");
                // Force a factor from the top of the range into a multiple.
                let l = primes[(next() as usize) % primes.len()];
                let m = n.wrapping_mul(BoxedUint::from(l).resize_unchecked(n.bits_precision()));
                if !bool::from(m.is_zero()) && m.as_words()[0] & 1 == 1 {
                    let exact = m.rem_vartime(
                        &NonZero::new(BoxedUint::from(l).resize_unchecked(m.bits_precision()))
                            .unwrap(),
                    );
                    if bool::from(exact.is_zero()) {
                        assert!(!passes_trial_division(&m));
                    }
                }
            }
        }
    }

    #[test]
    fn trial_division_and_bgw_prime() {
        assert!(!passes_trial_division(&BoxedUint::from(
            65521u64 * 1_000_003
        )));
        assert!(passes_trial_division(&BoxedUint::from(
            1_000_003u64 * 1_000_033
        )));
        let p = bgw_prime(100);
        assert!(p.bit_width_vartime() == 101);
        assert!(crypto_primes::is_prime(crypto_primes::Flavor::Any, &p));
    }

    #[test]
    fn known_bgw_primes() {
        // Each table entry is prime; the smallest such is checked for the 1024-bit sizes
        // (a full re-derivation of all twelve takes seconds, see `search_prime`).
        for (bits, off) in KNOWN_OFFSETS {
            let p = power_of_two_plus(bits, off);
            assert!(
                crypto_primes::is_prime(crypto_primes::Flavor::Any, &p),
                "{bits}"
            );
        }
        for (bits, off) in &KNOWN_OFFSETS[..3] {
            assert_eq!(search_prime(*bits), power_of_two_plus(*bits, *off));
        }
    }
}
