//! Customer-mode products (CRYPTO-NOTES §1.9, §1.10): every product that involves the
//! customer's secret is a Paillier MtA under the customer's key, one per cell; products among
//! the cells stay BGW among the cells and are kept as additive shares, never opened on their
//! own (docs/THREAT-MODEL.md has the argument).
//!
//! Three shapes, each a `paillier::Mta` whose widths rule out wrap-around:
//! - sieve: a = a_C·Σ bᵢ (mod M): cell i returns Enc(a_C·bᵢ + βᵢ); x, y < M.
//! - N: p_C·q_cells + q_C·p_cells = Σᵢ (p_C·qᵢ + q_C·pᵢ): cell i returns
//!   Enc(p_C·qᵢ + q_C·pᵢ + βᵢ); x, y < 2^K.
//! - gcd: r_C·Ψ + ψ_C·R (mod N), with r_C and every rᵢ < N split into K-bit halves so that
//!   no product exceeds 2K + 1 bits: cell i returns Enc(r_lo·ψᵢ + ψ_C·rᵢ,lo + β_lo) and
//!   Enc(r_hi·ψᵢ + ψ_C·rᵢ,hi + β_hi), and the shares are α_lo + 2^K·α_hi and
//!   −(β_lo + 2^K·β_hi).
//!
//! The customer's share of each value is its own local product plus Σ αᵢ; cell i's share is
//! its BGW share minus βᵢ; everything is reduced into the ring of the value (Z_M, Z_P, Z_N).
//! The customer needs only Σ αᵢ, so it multiplies the cells' replies and decrypts once per
//! value (one decryption instead of m); `Shapes::new` checks that the sum cannot wrap either.

use crypto_bigint::{BoxedUint, NonZero, Resize};
use zeroize::Zeroizing;

use crate::paillier::{
    Ciphertext, Mta, PaillierError, PublicKey, Randomiser, SecretKey, neg_reduce, reduce,
};

use super::msg::Reader;
use super::rng::KeygenRng;
use super::zmod::{Elem, Zmod};
use super::{KeygenError, Result};

impl From<PaillierError> for KeygenError {
    fn from(e: PaillierError) -> Self {
        match e {
            PaillierError::Params(m) => KeygenError::Params(m),
            PaillierError::Malformed(m) => KeygenError::Malformed(m),
            PaillierError::Random => KeygenError::Random,
        }
    }
}

/// The three product shapes under one customer key.
pub(crate) struct Shapes {
    pub(crate) pk: PublicKey,
    sieve: Mta,
    product: Mta,
    gcd: Mta,
    k: usize,
}

impl Shapes {
    /// K: bits of a prime; `m_bits`: bits of the sieve modulus M; `cells`: replies summed
    /// before one decryption.
    pub(crate) fn new(pk: &PublicKey, k: usize, m_bits: usize, cells: usize) -> Result<Shapes> {
        let shapes = [
            Mta::new(pk, m_bits, m_bits, 1)?,
            Mta::new(pk, k, k, 2)?,
            Mta::new(pk, k + 1, k + 1, 2)?,
        ];
        // Σ of `cells` values below 2^(b+1) stays below 2^(|N|−1) ≤ N.
        let log_cells = (usize::BITS - (cells.max(1) - 1).leading_zeros()) as usize;
        if shapes
            .iter()
            .any(|m| m.beta_bits() + 1 + log_cells > pk.bits() - 1)
        {
            return Err(KeygenError::Params(
                "Paillier modulus too small for the sum of the cells' replies",
            ));
        }
        let [sieve, product, gcd] = shapes;
        Ok(Shapes {
            pk: pk.clone(),
            sieve,
            product,
            gcd,
            k,
        })
    }

    /// Π of the cells' ciphertexts at each position: Enc(Σ αᵢ).
    fn sum_replies(&self, replies: &[(usize, &[u8])], count: usize) -> Result<Vec<Ciphertext>> {
        let mut acc: Option<Vec<Ciphertext>> = None;
        for (_, body) in replies {
            let mut r = Reader(body);
            let cts = self.decode(&mut r, count)?;
            r.finish()?;
            acc = Some(match acc {
                None => cts,
                Some(a) => a.iter().zip(&cts).map(|(x, y)| self.pk.add(x, y)).collect(),
            });
        }
        acc.ok_or(KeygenError::Failed("no replies"))
    }

    fn encode(&self, cts: &[Ciphertext], out: &mut Vec<u8>) {
        for c in cts {
            self.pk.encode(c, out);
        }
    }

    fn decode(&self, r: &mut Reader<'_>, count: usize) -> Result<Vec<Ciphertext>> {
        let len = self.pk.ciphertext_bytes();
        (0..count)
            .map(|_| Ok(self.pk.decode(r.take(len)?)?))
            .collect()
    }

    /// Bytes of the customer's inputs for `count` sieve values.
    pub(crate) fn sieve_input_bytes(&self, count: usize) -> usize {
        count * self.pk.ciphertext_bytes()
    }
}

/// The shapes, once the customer's key is known.
pub(crate) fn need(sh: &Option<Shapes>) -> Result<&Shapes> {
    sh.as_ref().ok_or(KeygenError::Failed("no customer key"))
}

/// The customer's key.
pub(crate) fn need_key(sk: &Option<SecretKey>) -> Result<&SecretKey> {
    sk.as_ref().ok_or(KeygenError::Failed("no customer key"))
}

fn nz(v: &BoxedUint) -> NonZero<BoxedUint> {
    NonZero::new(v.clone()).expect("modulus > 0")
}

/// Customer: Enc(a) for each of its sieve factors.
pub(crate) fn sieve_inputs(
    sh: &Shapes,
    sk: &SecretKey,
    a: &[Elem],
    rng: &mut dyn KeygenRng,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(sh.sieve_input_bytes(a.len()));
    for v in a {
        let x = Zeroizing::new(v.retrieve());
        let c = sh.sieve.encrypt_own(sk, std::slice::from_ref(&*x), rng)?;
        sh.encode(&c, &mut out);
    }
    Ok(out)
}

/// Cell: the replies Enc(a_C·bᵢ + βᵢ) and its new share −βᵢ mod M, per value.
pub(crate) fn sieve_reply(
    sh: &Shapes,
    zm: &Zmod,
    inputs: &[u8],
    b: &[Elem],
    pool: &mut Vec<Randomiser>,
    rng: &mut dyn KeygenRng,
) -> Result<(Vec<u8>, Zeroizing<Vec<Elem>>)> {
    let mut r = Reader(inputs);
    let cts = sh.decode(&mut r, b.len())?;
    r.finish()?;
    let m = nz(zm.modulus());
    let mut body = Vec::with_capacity(sh.sieve_input_bytes(b.len()));
    let mut own = Zeroizing::new(Vec::with_capacity(b.len()));
    for (c, v) in cts.iter().zip(b) {
        let y = Zeroizing::new(v.retrieve());
        let reply = sh.sieve.reply_with(
            std::slice::from_ref(c),
            std::slice::from_ref(&*y),
            pool.pop(),
            rng,
        )?;
        sh.pk.encode(&reply.ciphertext, &mut body);
        own.push(zm.elem(&neg_reduce(&reply.beta, &m)));
    }
    Ok((body, own))
}

/// Customer: its share a_C·0 + Σᵢ αᵢ mod M per value (the cells hold −βᵢ; Σ = a_C·Σ bᵢ).
pub(crate) fn sieve_finish(
    sh: &Shapes,
    sk: &SecretKey,
    zm: &Zmod,
    replies: &[(usize, &[u8])],
    count: usize,
) -> Result<Zeroizing<Vec<Elem>>> {
    let m = nz(zm.modulus());
    let mut acc: Zeroizing<Vec<Elem>> = Zeroizing::new(Vec::with_capacity(count));
    for c in sh.sum_replies(replies, count)? {
        let alpha = sh.sieve.finish(sk, &c)?;
        acc.push(zm.elem(&reduce(&alpha, &m)));
    }
    Ok(acc)
}

/// Customer: Enc(p_C), Enc(q_C) per candidate.
pub(crate) fn product_inputs(
    sh: &Shapes,
    sk: &SecretKey,
    ps: &[BoxedUint],
    qs: &[BoxedUint],
    rng: &mut dyn KeygenRng,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(2 * ps.len() * sh.pk.ciphertext_bytes());
    for (p, q) in ps.iter().zip(qs) {
        let cts = sh.product.encrypt_own(sk, &[p.clone(), q.clone()], rng)?;
        sh.encode(&cts, &mut out);
    }
    Ok(out)
}

/// Cell: Enc(p_C·qᵢ + q_C·pᵢ + βᵢ) per candidate, and −βᵢ mod P.
pub(crate) fn product_reply(
    sh: &Shapes,
    zp: &Zmod,
    inputs: &[u8],
    ps: &[BoxedUint],
    qs: &[BoxedUint],
    pool: &mut Vec<Randomiser>,
    rng: &mut dyn KeygenRng,
) -> Result<(Vec<u8>, Zeroizing<Vec<Elem>>)> {
    let mut r = Reader(inputs);
    let cts = sh.decode(&mut r, 2 * ps.len())?;
    r.finish()?;
    let prime = nz(zp.modulus());
    let mut body = Vec::with_capacity(ps.len() * sh.pk.ciphertext_bytes());
    let mut own = Zeroizing::new(Vec::with_capacity(ps.len()));
    for (pair, (p, q)) in cts.chunks_exact(2).zip(ps.iter().zip(qs)) {
        // Enc(p_C)^(qᵢ)·Enc(q_C)^(pᵢ).
        let reply = sh
            .product
            .reply_with(pair, &[q.clone(), p.clone()], pool.pop(), rng)?;
        sh.pk.encode(&reply.ciphertext, &mut body);
        own.push(zp.elem(&neg_reduce(&reply.beta, &prime)));
    }
    Ok((body, own))
}

/// Customer: p_C·q_C + Σᵢ αᵢ mod P per candidate.
pub(crate) fn product_finish(
    sh: &Shapes,
    sk: &SecretKey,
    zp: &Zmod,
    replies: &[(usize, &[u8])],
    ps: &[BoxedUint],
    qs: &[BoxedUint],
) -> Result<Zeroizing<Vec<Elem>>> {
    let prime = nz(zp.modulus());
    let mut acc: Zeroizing<Vec<Elem>> = Zeroizing::new(
        ps.iter()
            .zip(qs)
            .map(|(p, q)| zp.elem(p).mul(&zp.elem(q)))
            .collect(),
    );
    for (a, c) in acc.iter_mut().zip(&sh.sum_replies(replies, ps.len())?) {
        let alpha = sh.product.finish(sk, c)?;
        *a = a.add(&zp.elem(&reduce(&alpha, &prime)));
    }
    Ok(acc)
}

/// (low K bits, the rest) of v < 2^(2K), at precision K + 64.
fn halves(v: &BoxedUint, k: usize) -> (Zeroizing<BoxedUint>, Zeroizing<BoxedUint>) {
    let prec = (k + 64) as u32;
    let hi = Zeroizing::new(v.shr(k as u32));
    let lo = Zeroizing::new(v.wrapping_sub(hi.shl(k as u32)));
    (
        Zeroizing::new((&*lo).resize_unchecked(prec)),
        Zeroizing::new((&*hi).resize_unchecked(prec)),
    )
}

/// Customer: Enc(r_lo), Enc(r_hi), Enc(ψ_C) for the gcd product.
pub(crate) fn gcd_inputs(
    sh: &Shapes,
    sk: &SecretKey,
    r: &BoxedUint,
    psi: &BoxedUint,
    rng: &mut dyn KeygenRng,
) -> Result<Vec<u8>> {
    let (lo, hi) = halves(r, sh.k);
    let psi = Zeroizing::new(psi.resize_unchecked((sh.k + 64) as u32));
    // The replies pair (r_lo, ψ_C) and (r_hi, ψ_C); ψ_C travels once.
    let mut out = Vec::with_capacity(3 * sh.pk.ciphertext_bytes());
    for x in [&lo, &hi, &psi] {
        sh.pk.encode(&sh.gcd.encrypt_one_own(sk, x, rng)?, &mut out);
    }
    Ok(out)
}

/// Bytes of the customer's gcd inputs.
pub(crate) fn gcd_input_bytes(sh: &Shapes) -> usize {
    3 * sh.pk.ciphertext_bytes()
}

/// Cell: the two replies and its share −(β_lo + 2^K·β_hi) mod N.
pub(crate) fn gcd_reply(
    sh: &Shapes,
    zn: &Zmod,
    inputs: &[u8],
    psi: &BoxedUint,
    r: &BoxedUint,
    pool: &mut Vec<Randomiser>,
    rng: &mut dyn KeygenRng,
) -> Result<(Vec<u8>, Elem)> {
    let mut rd = Reader(inputs);
    let cts = sh.decode(&mut rd, 3)?;
    rd.finish()?;
    let (lo, hi) = halves(r, sh.k);
    let psi = Zeroizing::new(psi.resize_unchecked((sh.k + 64) as u32));
    let n = nz(zn.modulus());
    let two_k = two_pow(zn, sh.k);
    let mut body = Vec::with_capacity(2 * sh.pk.ciphertext_bytes());
    let mut own = zn.zero();
    for (x, y, scale) in [(&cts[0], &lo, zn.small(1)), (&cts[1], &hi, two_k)] {
        let reply = sh.gcd.reply_with(
            &[x.clone(), cts[2].clone()],
            &[BoxedUint::clone(&psi), BoxedUint::clone(y)],
            pool.pop(),
            rng,
        )?;
        sh.pk.encode(&reply.ciphertext, &mut body);
        own = own.add(&zn.elem(&neg_reduce(&reply.beta, &n)).mul(&scale));
    }
    Ok((body, own))
}

/// Customer: r_C·ψ_C + Σᵢ (α_lo + 2^K·α_hi) mod N.
pub(crate) fn gcd_finish(
    sh: &Shapes,
    sk: &SecretKey,
    zn: &Zmod,
    replies: &[(usize, &[u8])],
    r: &BoxedUint,
    psi: &BoxedUint,
) -> Result<Elem> {
    let n = nz(zn.modulus());
    let two_k = two_pow(zn, sh.k);
    let cts = sh.sum_replies(replies, 2)?;
    let (a_lo, a_hi) = (sh.gcd.finish(sk, &cts[0])?, sh.gcd.finish(sk, &cts[1])?);
    let lo = zn.elem(&reduce(&a_lo, &n));
    let hi = zn.elem(&reduce(&a_hi, &n));
    Ok(zn.elem(r).mul(&zn.elem(psi)).add(&lo).add(&hi.mul(&two_k)))
}

fn two_pow(zm: &Zmod, k: usize) -> Elem {
    let prec = zm.precision().max(k as u32 + 64);
    zm.elem(&BoxedUint::one_with_precision(prec).shl(k as u32))
}
