//! Public number theory: small primes, the BGW prime, trial division of N, Jacobi symbols.
//! Everything here handles public values only, so variable-time code is fine.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crypto_bigint::{BoxedUint, ConcatenatingMul, Gcd, NonZero, Resize};

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

/// Π of the primes < TRIAL_DIVISION_BOUND, computed once.
fn trial_product() -> &'static BoxedUint {
    static P: OnceLock<BoxedUint> = OnceLock::new();
    P.get_or_init(|| {
        // A product tree keeps the multiplications balanced.
        let mut level: Vec<BoxedUint> = primes_below(TRIAL_DIVISION_BOUND)
            .into_iter()
            .map(|p| BoxedUint::from(p as u64))
            .collect();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|c| match c {
                    [a, b] => a.concatenating_mul(b),
                    [a] => a.clone(),
                    _ => unreachable!(),
                })
                .collect();
        }
        level.pop().expect("primes exist")
    })
}

/// True when N has no prime factor below TRIAL_DIVISION_BOUND: gcd(Π mod N, N) = 1.
pub(crate) fn passes_trial_division(n: &BoxedUint) -> bool {
    let nz = NonZero::new(n.clone()).expect("N is nonzero");
    let r = trial_product().rem_vartime(&nz);
    if bool::from(r.is_zero()) {
        return false;
    }
    r.gcd_vartime(n) == BoxedUint::one_with_precision(n.bits_precision())
}

/// The BGW prime: the smallest prime above 2^bits. Deterministic and public, cached per size.
pub(crate) fn bgw_prime(bits: u32) -> BoxedUint {
    static CACHE: OnceLock<Mutex<HashMap<u32, BoxedUint>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(p) = cache.lock().expect("cache lock").get(&bits) {
        return p.clone();
    }
    let precision = bits + 64;
    let mut c = BoxedUint::one_with_precision(precision)
        .shl_vartime(bits)
        .expect("fits")
        .wrapping_add(&BoxedUint::one_with_precision(precision));
    let two = BoxedUint::from(2u64).resize_unchecked(precision);
    while !crypto_primes::is_prime(crypto_primes::Flavor::Any, &c) {
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
}

#[cfg(test)]
mod scratch {
    use super::*;
    #[test]
    #[ignore]
    fn time_trial() {
        let n = bgw_prime(2040).wrapping_mul(&BoxedUint::one_with_precision(2112)).resize_unchecked(2048);
        let n = n.resize_unchecked(2048);
        let _ = trial_product();
        let t = std::time::Instant::now();
        let nz = NonZero::new(n.clone()).unwrap();
        let mut r = BoxedUint::zero_with_precision(64);
        for _ in 0..100 { r = trial_product().rem_vartime(&nz); }
        println!("rem {:?}", t.elapsed() / 100);
        let t = std::time::Instant::now();
        for _ in 0..100 { let _ = r.gcd_vartime(&n); }
        println!("gcd {:?}", t.elapsed() / 100);
        let t = std::time::Instant::now();
        for _ in 0..100 { let _ = r.gcd(&n); }
        println!("gcd ct {:?}", t.elapsed() / 100);
        let t = std::time::Instant::now();
        for _ in 0..100 { let _ = crypto_primes::is_prime(crypto_primes::Flavor::Any, &n); }
        println!("is_prime {:?}", t.elapsed() / 100);
    }
}
