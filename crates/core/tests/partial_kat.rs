//! `rsa_partial` against a straightforward reference, so that a faster kernel can never
//! silently change a partial: for random moduli, inputs and signed shares at several sizes,
//! rsa_partial(N, x, ±m) must equal (x^±1)^m squared, computed with crypto-bigint's plain
//! `BoxedMontyForm` exponentiation — or both must refuse the input.
//!
//! On a CPU with AVX-512 IFMA the sizes below (1024/2048/3072, and the others up to 4158
//! bits) go through the fast kernel; elsewhere, through the fallback. Either way the outputs
//! must be the reference's.

use crypto_bigint::BoxedUint;
use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use keyfrag_core::rsa_partial::rsa_partial;
use keyfrag_core::rsa_share::{RsaShare, share_bytes, share_exponent_bits};
use keyfrag_core::secret::SecretBytes;

fn random(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    keyfrag_core::random::fill(&mut v).unwrap();
    v
}

/// A random odd modulus of exactly `bits` bits, big-endian.
fn random_modulus(bits: usize) -> Vec<u8> {
    let len = bits.div_ceil(8);
    let mut n = random(len);
    let spare = 8 * len - bits;
    n[0] &= 0xff >> spare;
    n[0] |= 0x80 >> spare;
    n[len - 1] |= 1;
    n
}

/// A random input below N (top bit of N's width cleared), N's length.
fn random_input(bits: usize) -> Vec<u8> {
    let len = bits.div_ceil(8);
    let mut x = random(len);
    let spare = 8 * len - bits;
    x[0] &= 0x7f >> spare;
    x
}

/// A share magnitude at the fixed width; `kind` 0: uniform over the full width,
/// 1: top bit set, 2: short (most bytes zero), 3: zero.
fn magnitude(bits: usize, kind: u8) -> Vec<u8> {
    let len = share_bytes(bits);
    let spare = 8 * len - share_exponent_bits(bits);
    let mut m = random(len);
    m[0] &= 0xff >> spare;
    match kind {
        1 => m[0] |= 0x80 >> spare,
        2 => m[..len - 3].fill(0),
        3 => m.fill(0),
        _ => {}
    }
    m
}

/// x^(2·share) mod N the plain way, or `None` if x is zero or not invertible mod N.
fn reference(modulus: &[u8], input: &[u8], share: &RsaShare) -> Option<Vec<u8>> {
    let n = BoxedUint::from_be_slice_vartime(modulus).to_odd().unwrap();
    let params = BoxedMontyParams::new_vartime(n);
    let x = BoxedUint::from_be_slice(input, params.bits_precision()).unwrap();
    if bool::from(x.is_zero()) {
        return None;
    }
    let x = BoxedMontyForm::new(x, &params);
    // rsa_partial refuses any input not invertible mod N, whatever the share's sign.
    let x_inv = x.invert().into_option()?;
    let base = if share.negative { x_inv } else { x };
    let mag = share.magnitude.expose();
    let e = BoxedUint::from_be_slice(mag, 8 * mag.len() as u32).unwrap();
    let y = base.pow(&e).square().retrieve().to_be_bytes();
    Some(y[y.len() - modulus.len()..].to_vec())
}

fn check(bits: usize, cases: usize) {
    for i in 0..cases {
        let modulus = random_modulus(bits);
        let input = random_input(bits);
        let share = RsaShare {
            negative: i % 2 == 1,
            magnitude: SecretBytes::new(magnitude(bits, (i / 2 % 4) as u8)),
        };
        let got = rsa_partial(&modulus, &input, &share).ok();
        let want = reference(&modulus, &input, &share);
        assert_eq!(
            got, want,
            "{bits}-bit case {i} (negative: {})",
            share.negative
        );
        if let Some(got) = got {
            assert_eq!(got.len(), modulus.len());
        }
    }
}

#[test]
fn partial_matches_reference_1024() {
    check(1024, 16);
}

#[test]
fn partial_matches_reference_2048() {
    check(2048, 12);
}

#[test]
fn partial_matches_reference_3072() {
    check(3072, 8);
}

#[test]
fn partial_matches_reference_odd_sizes() {
    for bits in [1000, 1536, 2047, 2049, 4096] {
        check(bits, 4);
    }
}

/// Sizes the fast kernel does not instantiate (below 416 or above 4158 bits) take the
/// crypto-bigint fallback, which must agree as well.
#[test]
fn partial_matches_reference_fallback_sizes() {
    for bits in [256, 4200] {
        check(bits, 2);
    }
}

/// Inputs sharing a factor with N are refused, for either sign, as by the reference.
#[test]
fn non_invertible_input_is_refused() {
    // N = 3·k for a random odd k: x = 3 is not invertible, x = 2 is.
    let k = BoxedUint::from_be_slice_vartime(&random_modulus(2046));
    let n = k.wrapping_mul(BoxedUint::from_be_slice(&[3], k.bits_precision()).unwrap());
    let n_bytes = n.to_be_bytes();
    let start = n_bytes.iter().position(|&v| v != 0).unwrap();
    let modulus = &n_bytes[start..];
    let bits = n.bit_width_vartime() as usize;
    for negative in [false, true] {
        let share = RsaShare {
            negative,
            magnitude: SecretBytes::new(magnitude(bits, 1)),
        };
        assert!(rsa_partial(modulus, &[3], &share).is_err());
        assert!(reference(modulus, &[3], &share).is_none());
        let unit = rsa_partial(modulus, &[2], &share).ok();
        assert!(unit.is_some());
        assert_eq!(unit, reference(modulus, &[2], &share));
    }
}
