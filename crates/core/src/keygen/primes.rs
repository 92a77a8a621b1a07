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

/// The primes 3 ≤ ℓ < TRIAL_DIVISION_BOUND grouped so each group's product fits a limb,
/// with a precomputed reciprocal: N mod group is one pass of single-limb divisions.
fn trial_groups() -> &'static [(Reciprocal, Vec<u64>)] {
    static G: OnceLock<Vec<(Reciprocal, Vec<u64>)>> = OnceLock::new();
    G.get_or_init(|| {
        let mut out = Vec::new();
        let (mut prod, mut group) = (1u64, Vec::new());
        for l in primes_below(TRIAL_DIVISION_BOUND).into_iter().skip(1) {
            let l = l as u64;
            if prod.checked_mul(l).is_none() {
                let nz = NonZero::new(Limb(prod)).expect("nonzero");
                out.push((Reciprocal::new(nz), std::mem::take(&mut group)));
                prod = 1;
            }
            prod *= l;
            group.push(l);
        }
        let nz = NonZero::new(Limb(prod)).expect("nonzero");
        out.push((Reciprocal::new(nz), group));
        out
    })
}

/// True when the odd N has no prime factor below TRIAL_DIVISION_BOUND. Stops at the first
/// factor: most rejected N have a small one (public value, so early exit is fine).
pub(crate) fn passes_trial_division(n: &BoxedUint) -> bool {
    trial_groups().iter().all(|(recip, primes)| {
        let r = n.rem_limb_with_reciprocal(recip).0;
        primes.iter().all(|&l| !r.is_multiple_of(l))
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

/// Jacobi symbol (a/n) for odd n > 0, variable time (public values only).
pub(crate) fn jacobi_vartime(a: &BoxedUint, n: &BoxedUint) -> i8 {
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
