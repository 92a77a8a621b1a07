//! The Boneh–Franklin biprimality test (CRYPTO-NOTES §1.5) and public hash-derived values.
//!
//! For N = pq with p ≡ q ≡ 3 (mod 4) and (g/N) = +1, g^(φ/4) = ±1. Party 0 publishes
//! v₀ = g^((N − p₀ − q₀ + 1)/4), the others vᵢ = g^((pᵢ + qᵢ)/4), and an iteration accepts iff
//! v₀ ≡ ±Π vᵢ. The exponents are secret: they are raised at a fixed width that depends only
//! on the party's role (|N| bits for party 0, K bits for the others), in constant time.

use crypto_bigint::{BoxedUint, NonZero, Resize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::primes::jacobi_vartime;
use super::zmod::{Elem, Zmod};

/// A candidate modulus being tested, with its arithmetic.
pub(crate) struct Modulus {
    pub(crate) n: BoxedUint,
    pub(crate) zn: Zmod,
    pub(crate) bits: usize,
}

impl Modulus {
    pub(crate) fn new(n: &BoxedUint) -> Modulus {
        let bits = n.bit_width_vartime();
        let n = n.resize_unchecked(bits);
        Modulus {
            zn: Zmod::new(&n).expect("N is odd"),
            n,
            bits: bits as usize,
        }
    }

    /// Big-endian N, exactly ⌈bits/8⌉ bytes.
    pub(crate) fn to_be(&self) -> Vec<u8> {
        self.n.to_be_bytes_trimmed_vartime().into_vec()
    }
}

/// This party's secret test exponent and its fixed bit width.
pub(crate) fn exponent(
    me: usize,
    m: &Modulus,
    p: &BoxedUint,
    q: &BoxedUint,
    k: usize,
) -> (Zeroizing<BoxedUint>, u32) {
    let prec = m.n.bits_precision();
    let p = Zeroizing::new(p.resize_unchecked(prec));
    let q = Zeroizing::new(q.resize_unchecked(prec));
    let s = Zeroizing::new(p.wrapping_add(&*q));
    if me == 0 {
        // N − p₀ − q₀ + 1 ≡ 1 − 3 − 3 + 1 ≡ 0 (mod 4).
        let one = BoxedUint::one_with_precision(prec);
        let v = Zeroizing::new(m.n.wrapping_add(&one).wrapping_sub(&*s));
        (Zeroizing::new(v.shr(2)), m.bits as u32)
    } else {
        // pᵢ + qᵢ ≡ 0 (mod 4), and < 2^(K+1).
        (Zeroizing::new(s.shr(2)), k as u32)
    }
}

/// g^exp at the role's fixed width.
pub(crate) fn power(g: &Elem, exp: &BoxedUint, bits: u32) -> Elem {
    g.pow_bounded_exp(exp, bits)
}

/// The public check of one iteration: v₀ ≡ ±Π_{i≥1} vᵢ (mod N).
pub(crate) fn accepts(m: &Modulus, values: &[Elem]) -> bool {
    let mut prod = m.zn.small(1);
    for v in &values[1..] {
        prod = prod.mul(v);
    }
    let v0 = values[0].retrieve();
    v0 == prod.retrieve() || v0 == prod.neg().retrieve()
}

/// The filter iteration's base: the least g ≥ 2 with (g/N) = +1. A small g makes the Jacobi
/// symbol nearly free (CRYPTO-NOTES §1.10); the counted iterations use random bases.
pub(crate) fn filter_base(m: &Modulus) -> Elem {
    let mut g = 2u64;
    while jacobi_vartime(&BoxedUint::from(g), &m.n) != 1 {
        g += 1;
    }
    m.zn.small(g)
}

/// SHA-256 in counter mode over a domain-separated input: a public value in [0, N) with
/// 128 bits of excess, i.e. statistically uniform.
pub(crate) fn hash_to_zn(label: &[u8], session: &[u8], m: &Modulus, index: u64) -> BoxedUint {
    let len = (m.bits + 128).div_ceil(8);
    let mut out = Vec::with_capacity(len + 32);
    let nb = m.to_be();
    let mut block = 0u32;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(b"keyfrag/keygen/v1/");
        h.update((label.len() as u32).to_be_bytes());
        h.update(label);
        h.update(session);
        h.update((nb.len() as u32).to_be_bytes());
        h.update(&nb);
        h.update(index.to_be_bytes());
        h.update(block.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        block += 1;
    }
    out.truncate(len);
    let wide = BoxedUint::from_be_slice_vartime(&out);
    let nz = NonZero::new((&m.n).resize_unchecked(wide.bits_precision())).expect("N > 0");
    wide.rem_vartime(&nz).resize_unchecked(m.n.bits_precision())
}

/// `count` public bases in Z_N^* with Jacobi symbol +1, derived from (session, N) so every
/// party derives the same ones and none chooses them (CRYPTO-NOTES §1.5 step 1).
pub(crate) fn test_bases(session: &[u8], m: &Modulus, count: usize) -> Vec<Elem> {
    let mut out = Vec::with_capacity(count);
    let mut index = 0u64;
    while out.len() < count {
        let g = hash_to_zn(b"biprimality", session, m, index);
        index += 1;
        if jacobi_vartime(&g, &m.n) == 1 {
            out.push(m.zn.elem(&g));
        }
    }
    out
}
