//! The Boneh–Franklin biprimality test (CRYPTO-NOTES §1.5) and public hash-derived values.
//!
//! For N = pq with p ≡ q ≡ 3 (mod 4) and (g/N) = +1, g^(φ/4) = ±1. The notes' form has party 0
//! publish v₀ = g^((N − p₀ − q₀ + 1)/4) (a |N|-bit secret exponent) and the others
//! vᵢ = g^((pᵢ + qᵢ)/4) (K bits), and accept iff v₀ ≡ ±Π vᵢ. Here the |N|-bit work rotates:
//!
//! - every party i has the K-bit secret sᵢ = (pᵢ + qᵢ − 6·[i = 0])/4, an integer because
//!   p₀ + q₀ ≡ 3 + 3 ≡ 6 and pᵢ + qᵢ ≡ 0 (mod 4) (sieve.rs), with 0 ≤ sᵢ < 2^(K−1)
//!   (0 ≤ pᵢ, qᵢ and Σ pᵢ = p < 2^K; p₀ ≥ 3·2^(K−2) ≥ 6);
//! - the public integer E = (N − 5)/4 (N ≡ 3·3 ≡ 1 mod 4, so N − 5 ≡ 0 mod 4);
//! - Σᵢ sᵢ = (p + q − 6)/4, so E − Σᵢ sᵢ = (N − p − q + 1)/4 = φ/4;
//! - for a public carrier c (a function of the candidate's index and the iteration), party c
//!   publishes v_c = g^(E − s_c) and every other party vᵢ = g^(sᵢ); then
//!   v_c / Π_{i≠c} vᵢ = g^(E − Σ sᵢ) = g^(φ/4), and an iteration accepts iff
//!   v_c ≡ ±Π_{i≠c} vᵢ (mod N): the notes' test, with the same soundness argument.
//! - Nothing more is revealed than by the notes' form, for the same g: writing uᵢ for party
//!   i's notes-form value (u₀ = g^((N − p₀ − q₀ + 1)/4) = g^(E − s₀), uᵢ = g^(sᵢ) for i ≥ 1)
//!   and with g^E public, party 0 publishes u₀ or g^E/u₀ and party i ≥ 1 publishes uᵢ or
//!   g^E/uᵢ: always a public function of its notes-form value, and vice versa.
//!
//! The exponents are secret: they are raised at a fixed width that depends only on the role
//! in that iteration (|N| − 2 bits as the carrier, K bits otherwise), in constant time
//! (`modexp::PowCtx`, the IFMA kernel, or crypto-bigint's `pow_bounded_exp`). Rotating the
//! carrier spreads the |N|-bit exponentiations evenly over the parties.

use crypto_bigint::{BoxedUint, Resize};
use zeroize::Zeroizing;

use crate::modexp::{PowCtx, pow_ct};

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

    /// The constant-time kernel's constants for N, for many exponentiations modulo N (`None`
    /// without the kernel).
    pub(crate) fn pow_ctx(&self) -> Option<PowCtx> {
        PowCtx::new(self.zn.odd_modulus())
    }

    /// Big-endian N, exactly ⌈bits/8⌉ bytes.
    pub(crate) fn to_be(&self) -> Vec<u8> {
        self.n.to_be_bytes_trimmed_vartime().into_vec()
    }
}

/// Who carries the public term E in iteration `it` of candidate `idx` (public).
pub(crate) fn carrier(idx: usize, it: usize, parties: usize) -> usize {
    (idx + it) % parties
}

/// This party's secret exponents for one candidate: sᵢ (K bits) and, when it carries E in
/// some iteration, E − sᵢ (|N| − 2 bits), each with its fixed width (see the module docs).
pub(crate) struct Exponents {
    own: Zeroizing<BoxedUint>,
    own_bits: u32,
    carried: Zeroizing<BoxedUint>,
    carried_bits: u32,
}

impl Exponents {
    pub(crate) fn new(me: usize, m: &Modulus, p: &BoxedUint, q: &BoxedUint, k: usize) -> Self {
        let prec = m.n.bits_precision();
        let p = Zeroizing::new(p.resize_unchecked(prec));
        let q = Zeroizing::new(q.resize_unchecked(prec));
        let mut s = Zeroizing::new(p.wrapping_add(&*q));
        if me == 0 {
            // p₀ + q₀ − 6 ≡ 0 (mod 4) and ≥ 0; the role is public, so this branch is too.
            *s = s.wrapping_sub(BoxedUint::from(6u64).resize_unchecked(prec));
        }
        let own = Zeroizing::new(s.shr(2));
        // E = (N − 5)/4, public; E − sᵢ > 0 as sᵢ < 2^(K−1) < E.
        let e =
            m.n.wrapping_sub(BoxedUint::from(5u64).resize_unchecked(prec))
                .shr_vartime(2)
                .expect("shift < precision");
        let carried = Zeroizing::new(e.wrapping_sub(&*own));
        Exponents {
            own,
            own_bits: k as u32,
            carried,
            carried_bits: (m.bits - 2) as u32,
        }
    }

    /// v = g^(E − sᵢ) as the carrier, g^(sᵢ) otherwise: constant time at the role's width.
    /// `ctx`: N's kernel constants when several values are raised modulo the same N.
    pub(crate) fn value(&self, m: &Modulus, ctx: Option<&PowCtx>, g: &Elem, carrier: bool) -> Elem {
        if carrier {
            power(m, ctx, g, &self.carried, self.carried_bits)
        } else {
            power(m, ctx, g, &self.own, self.own_bits)
        }
    }
}

/// g^exp at a fixed width `bits`, in constant time in exp (g is public): the IFMA kernel
/// (with `ctx`, or `pow_ct` preparing N for this one use) or crypto-bigint without it.
fn power(m: &Modulus, ctx: Option<&PowCtx>, g: &Elem, exp: &BoxedUint, bits: u32) -> Elem {
    let base = g.retrieve();
    let fast = match ctx {
        Some(ctx) => ctx.pow(&base, exp, bits as usize),
        None => pow_ct(&base, exp, bits as usize, m.zn.odd_modulus()),
    };
    match fast {
        Some(v) => m.zn.reduced(&Zeroizing::new(v)),
        None => g.pow_bounded_exp(exp, bits),
    }
}

/// The public check of one iteration with carrier c: v_c ≡ ±Π_{i≠c} vᵢ (mod N).
pub(crate) fn accepts(m: &Modulus, values: &[Elem], carrier: usize) -> bool {
    let mut prod = m.zn.small(1);
    for (i, v) in values.iter().enumerate() {
        if i != carrier {
            prod = prod.mul(v);
        }
    }
    let vc = values[carrier].retrieve();
    vc == prod.retrieve() || vc == prod.neg().retrieve()
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

/// A public value in [0, N) derived from (label, session, N, index): `bigint::hash_below`
/// under the keygen domain.
pub(crate) fn hash_to_zn(label: &[u8], session: &[u8], m: &Modulus, index: u64) -> BoxedUint {
    let nb = m.to_be();
    let mut msg = Vec::with_capacity(label.len() + session.len() + nb.len() + 16);
    msg.extend_from_slice(&(label.len() as u32).to_be_bytes());
    msg.extend_from_slice(label);
    msg.extend_from_slice(session);
    msg.extend_from_slice(&(nb.len() as u32).to_be_bytes());
    msg.extend_from_slice(&nb);
    msg.extend_from_slice(&index.to_be_bytes());
    crate::bigint::hash_below(b"keyfrag/keygen/v1/", &msg, &m.n)
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
