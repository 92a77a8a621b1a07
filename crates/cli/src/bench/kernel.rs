//! The kernel and the physical limit (issue 7), measured inside `keyfrag bench` so that they
//! come from the same run as the throughput points they are compared with.
//!
//! - Kernel ratio: the cells' partial exponentiation (`keyfrag_core::rsa_partial`, x^(2·dᵢ)
//!   mod N with a `share_exponent_bits(|N|)`-bit exponent) against OpenSSL's constant-time
//!   modexp (`BN_mod_exp` with `BN_FLG_CONSTTIME` on the exponent, i.e.
//!   `BN_mod_exp_mont_consttime`) of the same widths, one thread each, interleaved
//!   repetitions; the ratio is the median of the per-repetition ratios so background load hits
//!   both alike. (crates/core/benches/partial.rs is the same comparison as a `cargo bench`.)
//! - Aggregate: OpenSSL's kernel on every core at once (one thread per core, all started
//!   together, operations completed inside the window). The physical limit of a private
//!   operation is that ÷ the parties computing a partial: no implementation of the scheme on
//!   this machine can sign faster. Ours on every core is reported beside it.
//!
//! OpenSSL's exponent is x^e with e of the share's width; ours also squares (x^(2e)), one
//! extra modular squaring out of ~|e|, so the comparison is the one the issue asks for.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use keyfrag_core::rsa_partial::rsa_partial;
use keyfrag_core::rsa_share::{RsaShare, share_bytes, share_exponent_bits};
use keyfrag_core::secret::SecretBytes;
use openssl::bn::{BigNum, BigNumContext};
use serde::Serialize;

/// One size's kernel figures (ops/s).
#[derive(Clone, Debug, Serialize)]
pub struct KernelRow {
    pub bits: usize,
    pub exponent_bits: usize,
    /// Single thread, median over the repetitions.
    pub openssl_ops: f64,
    pub ours_ops: f64,
    /// Median of per-repetition ours ÷ OpenSSL (target ≥ 0.9).
    pub ratio: f64,
    pub repetitions: usize,
    /// One thread per core, aggregate.
    pub threads: usize,
    pub openssl_all_cores_ops: f64,
    pub ours_all_cores_ops: f64,
}

/// The operands of one size, random (the kernel's time does not depend on the values).
struct Case {
    bits: usize,
    modulus: Vec<u8>,
    input: Vec<u8>,
    share: RsaShare,
    n: BigNum,
    x: BigNum,
    e: BigNum,
}

fn random_bits(bits: usize) -> Result<Vec<u8>, String> {
    let mut v = vec![0u8; bits.div_ceil(8)];
    getrandom::fill(&mut v).map_err(|e| format!("OS randomness: {e}"))?;
    let spare = 8 * v.len() - bits;
    v[0] &= 0xff >> spare;
    v[0] |= 0x80 >> spare; // exact width
    Ok(v)
}

/// Random operands the kernel accepts: a random odd N may share a factor with x (then x has
/// no inverse and the cells refuse it), so draw again.
fn case(bits: usize) -> Result<Case, String> {
    for _ in 0..64 {
        let c = draw(bits)?;
        if rsa_partial(&c.modulus, &c.input, &c.share).is_ok() {
            return Ok(c);
        }
    }
    Err(format!("RSA-{bits}: no operands accepted by rsa_partial"))
}

fn draw(bits: usize) -> Result<Case, String> {
    let ossl = |e: openssl::error::ErrorStack| format!("OpenSSL: {e}");
    let mut modulus = random_bits(bits)?;
    *modulus.last_mut().ok_or("empty modulus")? |= 1;
    // One bit shorter than N, so below it.
    let short = random_bits(bits - 1)?;
    let mut input = vec![0u8; modulus.len() - short.len()];
    input.extend_from_slice(&short);
    let magnitude = random_bits(share_exponent_bits(bits))?;
    if magnitude.len() != share_bytes(bits) {
        return Err(format!("RSA-{bits}: share width mismatch"));
    }
    let mut e = BigNum::from_slice(&magnitude).map_err(ossl)?;
    e.set_const_time();
    Ok(Case {
        bits,
        n: BigNum::from_slice(&modulus).map_err(ossl)?,
        x: BigNum::from_slice(&input).map_err(ossl)?,
        e,
        modulus,
        input,
        share: RsaShare {
            negative: false,
            magnitude: SecretBytes::new(magnitude),
        },
    })
}

fn openssl_once(c: &Case, ctx: &mut BigNumContext) -> BigNum {
    let mut r = BigNum::new().expect("BN_new");
    r.mod_exp(&c.x, &c.e, &c.n, ctx).expect("BN_mod_exp");
    r
}

fn ours_once(c: &Case) -> Vec<u8> {
    rsa_partial(&c.modulus, &c.input, &c.share).expect("rsa_partial")
}

/// Both compute x^(2e) mod N (OpenSSL's squared), or the comparison is void.
fn check(c: &Case) -> Result<(), String> {
    let ossl = |e: openssl::error::ErrorStack| format!("OpenSSL: {e}");
    let mut ctx = BigNumContext::new().map_err(ossl)?;
    let xe = openssl_once(c, &mut ctx);
    let mut sq = BigNum::new().map_err(ossl)?;
    sq.mod_sqr(&xe, &c.n, &mut ctx).map_err(ossl)?;
    let want = sq.to_vec_padded(c.modulus.len() as i32).map_err(ossl)?;
    if ours_once(c) != want {
        return Err(format!(
            "RSA-{}: rsa_partial disagrees with OpenSSL",
            c.bits
        ));
    }
    Ok(())
}

/// Operations per second of `f` over at least `budget` (and at least 3 calls).
fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut n = 0u32;
    while n < 3 || start.elapsed() < budget {
        f();
        n += 1;
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

/// `threads` threads running `f` together for `window`: operations completed inside it ÷ its
/// length. Each thread gets its own state from `make` (OpenSSL's context is per thread).
fn aggregate<S>(
    threads: usize,
    window: Duration,
    make: impl Fn() -> S + Sync,
    f: impl Fn(&mut S) + Sync,
) -> f64 {
    let barrier = Barrier::new(threads);
    let counts: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut state = make();
                    f(&mut state); // warm caches before the common start
                    barrier.wait();
                    let start = Instant::now();
                    let mut n = 0u64;
                    loop {
                        f(&mut state);
                        if start.elapsed() > window {
                            break;
                        }
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    counts.iter().sum::<u64>() as f64 / window.as_secs_f64()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Measure one size: `reps` interleaved single-thread repetitions of `budget` per side, then
/// `window` on every core for OpenSSL and for ours.
pub fn measure(
    bits: usize,
    reps: usize,
    budget: Duration,
    window: Duration,
) -> Result<KernelRow, String> {
    let c = case(bits)?;
    check(&c)?;
    let mut ctx = BigNumContext::new().map_err(|e| format!("OpenSSL: {e}"))?;
    let (mut o, mut k, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        let os = rate(budget, || {
            black_box(openssl_once(black_box(&c), &mut ctx));
        });
        let ks = rate(budget, || {
            black_box(ours_once(black_box(&c)));
        });
        o.push(os);
        k.push(ks);
        r.push(ks / os);
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let openssl_all_cores_ops = aggregate(
        threads,
        window,
        || BigNumContext::new().expect("BN_CTX_new"),
        |ctx| {
            black_box(openssl_once(black_box(&c), ctx));
        },
    );
    let ours_all_cores_ops = aggregate(
        threads,
        window,
        || (),
        |_| {
            black_box(ours_once(black_box(&c)));
        },
    );
    let row = KernelRow {
        bits,
        exponent_bits: share_exponent_bits(bits),
        openssl_ops: median(&mut o),
        ours_ops: median(&mut k),
        ratio: median(&mut r),
        repetitions: reps.max(1),
        threads,
        openssl_all_cores_ops,
        ours_all_cores_ops,
    };
    eprintln!(
        "bench: kernel RSA-{bits}: openssl ct {:.1}/s, rsa_partial {:.1}/s ({:.3}x); \
         {threads} threads: openssl {:.1}/s, rsa_partial {:.1}/s",
        row.openssl_ops, row.ours_ops, row.ratio, openssl_all_cores_ops, ours_all_cores_ops
    );
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn both_kernels_agree_on_random_operands() {
        // Correctness only (no timing): the comparison is void if they compute different things.
        let c = case(1024).unwrap();
        check(&c).unwrap();
    }
}
