//! Kernel benchmark (issue 7, item 2): a cell's constant-time partial exponentiation
//! (`rsa_partial`: x^(2·dᵢ) mod N with a `share_exponent_bits(|N|)`-bit secret exponent)
//! against OpenSSL's constant-time modular exponentiation (`BN_mod_exp_mont_consttime`,
//! reached through `BN_mod_exp` with `BN_FLG_CONSTTIME` on the exponent) at the same sizes,
//! plus crypto-bigint's `BoxedMontyForm::pow_bounded_exp` (the kernel before issue 7) for
//! reference.
//!
//! The implementations are measured interleaved in the same run, `REPS` times, and the
//! medians are printed; the ratio is the median of the per-repetition ratios, so load from
//! other processes on a shared machine hits both sides alike.
//!
//! Run: `cargo bench -p keyfrag-core --bench partial`. Environment: `KEYFRAG_BENCH_REPS`
//! (default 7), `KEYFRAG_BENCH_MS` (time per measurement, default 400),
//! `KEYFRAG_BENCH_SIZES` (comma-separated modulus sizes, default `2048,3072`).
//! Needs OpenSSL's headers and libraries (libssl-dev, pkg-config); the library never links
//! OpenSSL, only this benchmark does.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crypto_bigint::BoxedUint;
use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use keyfrag_core::rsa_partial::rsa_partial;
use keyfrag_core::rsa_share::{RsaShare, share_bytes, share_exponent_bits};
use keyfrag_core::secret::SecretBytes;
use openssl::bn::{BigNum, BigNumContext};

/// Deterministic test data (splitmix64): benchmarks need no secret randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `bits` random bits, big-endian, with the top bit set (exact width).
    fn exact_bits(&mut self, bits: usize) -> Vec<u8> {
        let len = bits.div_ceil(8);
        let mut v: Vec<u8> = (0..len).map(|_| self.next() as u8).collect();
        let spare = 8 * len - bits;
        v[0] &= 0xff >> spare;
        v[0] |= 0x80 >> spare;
        v
    }
}

struct Case {
    bits: usize,
    modulus: Vec<u8>,
    input: Vec<u8>,
    share: RsaShare,
    // OpenSSL's operands.
    ossl_n: BigNum,
    ossl_x: BigNum,
    ossl_e: BigNum,
    // crypto-bigint's old path.
    boxed_x: BoxedMontyForm,
    boxed_e: BoxedUint,
}

fn case(bits: usize, rng: &mut Rng) -> Case {
    let mut modulus = rng.exact_bits(bits);
    *modulus.last_mut().unwrap() |= 1;
    // Input one bit shorter than N, so below it.
    let mut input = vec![0u8; modulus.len()];
    let x = rng.exact_bits(bits - 1);
    let off = input.len() - x.len();
    input[off..].copy_from_slice(&x);
    // A full-width share: its top bit at share_exponent_bits - 1.
    let exp_bits = share_exponent_bits(bits);
    let magnitude = rng.exact_bits(exp_bits);
    assert_eq!(magnitude.len(), share_bytes(bits));

    let ossl_n = BigNum::from_slice(&modulus).unwrap();
    let ossl_x = BigNum::from_slice(&input).unwrap();
    let mut ossl_e = BigNum::from_slice(&magnitude).unwrap();
    ossl_e.set_const_time();
    assert!(ossl_e.is_const_time());
    assert_eq!(ossl_e.num_bits() as usize, exp_bits);

    let n = BoxedUint::from_be_slice_vartime(&modulus).to_odd().unwrap();
    let params = BoxedMontyParams::new_vartime(n);
    let precision = params.bits_precision();
    let boxed_x = BoxedMontyForm::new(
        BoxedUint::from_be_slice(&input, precision).unwrap(),
        &params,
    );
    let boxed_e = BoxedUint::from_be_slice(&magnitude, 8 * magnitude.len() as u32).unwrap();

    Case {
        bits,
        modulus,
        input,
        share: RsaShare {
            negative: false,
            magnitude: SecretBytes::new(magnitude),
        },
        ossl_n,
        ossl_x,
        ossl_e,
        boxed_x,
        boxed_e,
    }
}

fn openssl_once(c: &Case, ctx: &mut BigNumContext) -> BigNum {
    let mut r = BigNum::new().unwrap();
    r.mod_exp(&c.ossl_x, &c.ossl_e, &c.ossl_n, ctx).unwrap();
    r
}

fn ours_once(c: &Case) -> Vec<u8> {
    rsa_partial(&c.modulus, &c.input, &c.share).unwrap()
}

fn boxed_once(c: &Case) -> BoxedMontyForm {
    c.boxed_x
        .pow_bounded_exp(&c.boxed_e, share_exponent_bits(c.bits) as u32)
        .square()
}

/// Operations per second of `f`, run for at least `budget` (and at least 3 times).
fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    f(); // warm up caches and lazy initialisation
    let start = Instant::now();
    let mut n = 0u32;
    while n < 3 || start.elapsed() < budget {
        f();
        n += 1;
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let reps: usize = env("KEYFRAG_BENCH_REPS", 7);
    let budget = Duration::from_millis(env("KEYFRAG_BENCH_MS", 400));
    let sizes: Vec<usize> = env("KEYFRAG_BENCH_SIZES", "2048,3072".to_string())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();

    let mut rng = Rng(0x6b65_7966_7261_6721);
    let cases: Vec<Case> = sizes.iter().map(|&b| case(b, &mut rng)).collect();
    let mut ctx = BigNumContext::new().unwrap();

    // Sanity: all three compute the same x^(2e) mod N.
    for c in &cases {
        let mut sq = BigNum::new().unwrap();
        let e = openssl_once(c, &mut ctx);
        sq.mod_sqr(&e, &c.ossl_n, &mut ctx).unwrap();
        let want = sq.to_vec_padded(c.modulus.len() as i32).unwrap();
        assert_eq!(ours_once(c), want, "rsa_partial disagrees with OpenSSL");
        let b = boxed_once(c).retrieve().to_be_bytes();
        assert_eq!(
            &b[b.len() - want.len()..],
            &want[..],
            "crypto-bigint disagrees"
        );
    }

    println!(
        "partial exponentiation, {reps} interleaved repetitions of {} ms each; medians",
        budget.as_millis()
    );
    // [case][impl] -> per-repetition ops/s; impl 0 = OpenSSL, 1 = ours, 2 = crypto-bigint.
    let mut ops = vec![[Vec::new(), Vec::new(), Vec::new()]; cases.len()];
    let mut ratios = vec![Vec::new(); cases.len()];
    for rep in 0..reps {
        for (i, c) in cases.iter().enumerate() {
            let o = rate(budget, || {
                black_box(openssl_once(black_box(c), &mut ctx));
            });
            let k = rate(budget, || {
                black_box(ours_once(black_box(c)));
            });
            let b = rate(budget, || {
                black_box(boxed_once(black_box(c)));
            });
            eprintln!(
                "  rep {rep} RSA-{}: openssl {o:.1}/s, rsa_partial {k:.1}/s ({:.3}x), \
                 crypto-bigint boxed pow {b:.1}/s ({:.3}x)",
                c.bits,
                k / o,
                b / o
            );
            ops[i][0].push(o);
            ops[i][1].push(k);
            ops[i][2].push(b);
            ratios[i].push((k / o, b / o));
        }
    }

    println!(
        "{:<10} {:>7} {:>16} {:>16} {:>9} {:>18} {:>9}",
        "modulus", "exp", "openssl ct op/s", "rsa_partial op/s", "ratio", "boxed pow op/s", "ratio"
    );
    for (i, c) in cases.iter().enumerate() {
        let o = median(&mut ops[i][0]);
        let k = median(&mut ops[i][1]);
        let b = median(&mut ops[i][2]);
        let mut rk: Vec<f64> = ratios[i].iter().map(|r| r.0).collect();
        let mut rb: Vec<f64> = ratios[i].iter().map(|r| r.1).collect();
        println!(
            "{:<10} {:>7} {:>16.1} {:>16.1} {:>8.3}x {:>18.1} {:>8.3}x",
            format!("RSA-{}", c.bits),
            share_exponent_bits(c.bits),
            o,
            k,
            median(&mut rk),
            b,
            median(&mut rb)
        );
    }
}
