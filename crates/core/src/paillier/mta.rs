//! Semi-honest multiplicative-to-additive conversion with Paillier (CRYPTO-NOTES §1.9):
//! the key holder A has x₁..x_t, the responder B has y₁..y_t; afterwards A holds α and B holds
//! −β with α − β = Σ xₖ·yₖ over the integers, and neither learns anything else.
//!
//! 1. A sends Enc(xₖ) under its own key (`encrypt`).
//! 2. B returns Enc(Σ xₖ·yₖ + β) = Π Enc(xₖ)^(yₖ) · Enc(β) with a fresh randomiser, β uniform
//!    in [0, 2^b) (`reply`); B's share is −β.
//! 3. A decrypts α = Σ xₖ·yₖ + β (`finish`).
//!
//! Why it is safe (semi-honest): A's view of B is α, and for any two values s, s' of the sum,
//! α = s + β and α = s' + β are within statistical distance |s − s'|/2^b ≤ 2^-HIDING_BITS
//! when b = |s|_max + HIDING_BITS, so α is independent of s up to 2^-128. B's view of A is
//! Paillier ciphertexts only (semantic security under the decisional composite residuosity
//! assumption), and B's reply carries a fresh r^N, so it is a fresh encryption of α whatever
//! randomness A's ciphertexts had.
//!
//! Nothing may wrap modulo the Paillier N: all values are non-negative and bounded by public
//! widths, with α < t·2^(x+y) + 2^b ≤ 2^(b+1) ≤ 2^(|N|−1) ≤ N. `Mta::new` refuses any widths
//! for which that could fail, so the integer identity α − β = Σ xₖyₖ always holds; signed
//! results (B's −β) are reduced by the caller into whatever ring it works in.

use crypto_bigint::{BoxedUint, CtSelect, Resize};
use zeroize::Zeroizing;

use crate::keygen::KeygenRng;
use crate::keygen::rng::random_bits;

use super::{Ciphertext, PaillierError, PublicKey, Randomiser, Result, SecretKey};

/// Statistical hiding of the responder's products (bits): the notes' λ = 128 (≥ 80).
pub const HIDING_BITS: usize = 128;

/// Public bounds of one product shape under one key.
#[derive(Clone, Debug)]
pub struct Mta {
    pk: PublicKey,
    x_bits: u32,
    y_bits: u32,
    terms: usize,
    beta_bits: usize,
}

/// B's reply and its share −β (β zeroized on drop).
pub struct MtaReply {
    pub ciphertext: Ciphertext,
    pub beta: Zeroizing<BoxedUint>,
}

impl Mta {
    /// Products of `terms` pairs with xₖ < 2^x_bits (A's) and yₖ < 2^y_bits (B's).
    pub fn new(pk: &PublicKey, x_bits: usize, y_bits: usize, terms: usize) -> Result<Mta> {
        if terms == 0 || x_bits == 0 || y_bits == 0 {
            return Err(PaillierError::Params("empty product"));
        }
        let log_terms = usize::BITS - (terms - 1).leading_zeros();
        let beta_bits = x_bits + y_bits + log_terms as usize + HIDING_BITS;
        // α < 2^(beta_bits + 1) must stay below N ≥ 2^(|N|−1).
        if beta_bits + 1 > pk.bits() - 1 || x_bits >= pk.bits() {
            return Err(PaillierError::Params(
                "Paillier modulus too small: the product could wrap",
            ));
        }
        Ok(Mta {
            pk: pk.clone(),
            x_bits: x_bits as u32,
            y_bits: y_bits as u32,
            terms,
            beta_bits,
        })
    }

    pub fn public(&self) -> &PublicKey {
        &self.pk
    }

    /// Width of β (and so of α), public.
    pub fn beta_bits(&self) -> usize {
        self.beta_bits
    }

    /// Step 1 (A): Enc(xₖ) for each input; every xₖ must fit x_bits.
    pub fn encrypt(&self, xs: &[BoxedUint], rng: &mut dyn KeygenRng) -> Result<Vec<Ciphertext>> {
        if xs.len() != self.terms {
            return Err(PaillierError::Params("wrong number of inputs"));
        }
        xs.iter()
            .map(|x| {
                fits(x, self.x_bits)?;
                self.pk.encrypt(x, rng)
            })
            .collect()
    }

    /// Step 1 with A's own key: the CRT randomiser (`SecretKey::randomiser`), far cheaper.
    pub fn encrypt_own(
        &self,
        sk: &SecretKey,
        xs: &[BoxedUint],
        rng: &mut dyn KeygenRng,
    ) -> Result<Vec<Ciphertext>> {
        if xs.len() != self.terms {
            return Err(PaillierError::Params("wrong number of inputs"));
        }
        if sk.public().n() != self.pk.n() {
            return Err(PaillierError::Params("inputs under another key"));
        }
        xs.iter()
            .map(|x| {
                fits(x, self.x_bits)?;
                sk.encrypt(x, rng)
            })
            .collect()
    }

    /// One input of step 1 with A's own key (inputs shared by several rows).
    pub fn encrypt_one_own(
        &self,
        sk: &SecretKey,
        x: &BoxedUint,
        rng: &mut dyn KeygenRng,
    ) -> Result<Ciphertext> {
        if sk.public().n() != self.pk.n() {
            return Err(PaillierError::Params("inputs under another key"));
        }
        fits(x, self.x_bits)?;
        sk.encrypt(x, rng)
    }

    /// Step 2 (B): Π Enc(xₖ)^(yₖ) · Enc(β), every yₖ raised at exactly y_bits bits.
    pub fn reply(
        &self,
        cts: &[Ciphertext],
        ys: &[BoxedUint],
        rng: &mut dyn KeygenRng,
    ) -> Result<MtaReply> {
        self.reply_with(cts, ys, None, rng)
    }

    /// Step 2 with a randomiser precomputed under this key (`PublicKey::randomiser`, used
    /// once): the reply then costs only the exponentiations.
    pub fn reply_with(
        &self,
        cts: &[Ciphertext],
        ys: &[BoxedUint],
        r: Option<Randomiser>,
        rng: &mut dyn KeygenRng,
    ) -> Result<MtaReply> {
        if cts.len() != self.terms || ys.len() != self.terms {
            return Err(PaillierError::Params("wrong number of inputs"));
        }
        let prec = self.pk.n().bits_precision();
        let beta = random_bits(rng, self.beta_bits, prec).map_err(|_| PaillierError::Random)?;
        let r = match r {
            Some(r) => r,
            None => self.pk.randomiser(rng)?,
        };
        let mut acc = self.pk.encrypt_with(&beta, &r)?;
        for (c, y) in cts.iter().zip(ys) {
            fits(y, self.y_bits)?;
            acc = self.pk.add(&acc, &self.pk.mul_secret(c, y, self.y_bits));
        }
        Ok(MtaReply {
            ciphertext: acc,
            beta,
        })
    }

    /// Step 3 (A): α = Dec(reply). The key must be the one this shape was made for.
    pub fn finish(&self, sk: &SecretKey, reply: &Ciphertext) -> Result<Zeroizing<BoxedUint>> {
        if sk.public().n() != self.pk.n() {
            return Err(PaillierError::Params("reply under another key"));
        }
        Ok(sk.decrypt(reply))
    }
}

/// v < 2^bits, checked in constant time (the shift is public; the outcome is a bounds check
/// on honest inputs, so failing it is a bug, not a secret).
fn fits(v: &BoxedUint, bits: u32) -> Result<()> {
    if bits >= v.bits_precision() {
        return Ok(());
    }
    let high = Zeroizing::new(v.shr(bits));
    if bool::from(high.is_zero()) {
        Ok(())
    } else {
        Err(PaillierError::Params("input wider than its bound"))
    }
}

/// x mod q for a non-negative x (constant time in x).
pub fn reduce(x: &BoxedUint, q: &crypto_bigint::NonZero<BoxedUint>) -> Zeroizing<BoxedUint> {
    let prec = x.bits_precision().max(q.as_ref().bits_precision());
    let x = Zeroizing::new(x.resize_unchecked(prec));
    let q_wide = crypto_bigint::NonZero::new(q.as_ref().resize_unchecked(prec)).expect("q > 0");
    Zeroizing::new(x.rem(&q_wide).resize_unchecked(q.as_ref().bits_precision()))
}

/// −x mod q for a non-negative x (constant time in x).
pub fn neg_reduce(x: &BoxedUint, q: &crypto_bigint::NonZero<BoxedUint>) -> Zeroizing<BoxedUint> {
    let r = reduce(x, q);
    let qv = q.as_ref();
    // (q − r) mod q, with r = 0 mapped to 0 by a masked select.
    let neg = Zeroizing::new(qv.wrapping_sub(&*r));
    let zero = BoxedUint::zero_with_precision(qv.bits_precision());
    Zeroizing::new(neg.ct_select(&zero, r.is_zero()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keygen::SeededRng;
    use crypto_bigint::NonZero;

    fn key(seed: u64) -> SecretKey {
        let mut rng = SeededRng::new(seed, 99);
        SecretKey::generate(2048, &mut rng).unwrap()
    }

    fn rand(rng: &mut SeededRng, bits: usize) -> BoxedUint {
        BoxedUint::clone(&random_bits(rng, bits, 2048).unwrap())
    }

    #[test]
    fn encrypt_decrypt_and_homomorphisms() {
        let sk = key(1);
        let pk = sk.public();
        let mut rng = SeededRng::new(1, 0);
        let a = rand(&mut rng, 1000);
        let b = rand(&mut rng, 1000);
        let k = rand(&mut rng, 900);
        let ca = pk.encrypt(&a, &mut rng).unwrap();
        let cb = pk.encrypt(&b, &mut rng).unwrap();
        assert_eq!(*sk.decrypt(&ca), a);
        assert_eq!(*sk.decrypt(&pk.add(&ca, &cb)), a.wrapping_add(&b));
        let ak = (&a).resize_unchecked(2048).wrapping_mul(&k);
        assert_eq!(*sk.decrypt(&pk.mul_secret(&ca, &k, 900)), ak);
        assert_eq!(*sk.decrypt(&pk.mul_secret_portable(&ca, &k, 900)), ak);
        // Encoding round trip; two encryptions of one value differ.
        let mut buf = Vec::new();
        pk.encode(&ca, &mut buf);
        assert_eq!(buf.len(), pk.ciphertext_bytes());
        assert_eq!(pk.decode(&buf).unwrap(), ca);
        assert_ne!(pk.encrypt(&a, &mut rng).unwrap(), ca);
        // Plaintexts at or above N are refused, not wrapped.
        let n = pk.n().clone();
        assert!(pk.encrypt(&n, &mut rng).is_err());
        assert!(pk.decode(&vec![0u8; pk.ciphertext_bytes()]).is_err());
        assert!(pk.decode(&buf[1..]).is_err());
        // The key holder's CRT randomiser encrypts to the same plaintexts.
        let cc = sk.encrypt(&a, &mut rng).unwrap();
        assert_eq!(*sk.decrypt(&cc), a);
        assert_ne!(cc, ca);
        assert_eq!(*sk.decrypt(&pk.add(&cc, &cb)), a.wrapping_add(&b));
        let mta = Mta::new(pk, 1000, 64, 1).unwrap();
        let own = mta
            .encrypt_own(&sk, std::slice::from_ref(&a), &mut rng)
            .unwrap();
        assert_eq!(*sk.decrypt(&own[0]), a);
        let pub_again = PublicKey::from_be(&pk.to_be()).unwrap();
        assert_eq!(pub_again.n(), pk.n());
        assert!(format!("{sk:?}").contains("bits"));
    }

    #[test]
    fn mta_matches_the_integer_product() {
        let sk = key(2);
        let mut rng = SeededRng::new(2, 0);
        // N's shape: two products of 512-bit shares (RSA-1024 under Paillier-2048).
        let mta = Mta::new(sk.public(), 512, 512, 2).unwrap();
        for _ in 0..4 {
            let xs = [rand(&mut rng, 512), rand(&mut rng, 512)];
            let ys = [rand(&mut rng, 512), rand(&mut rng, 512)];
            let cts = mta.encrypt(&xs, &mut rng).unwrap();
            let reply = mta.reply(&cts, &ys, &mut rng).unwrap();
            let alpha = mta.finish(&sk, &reply.ciphertext).unwrap();
            let w = 2048;
            let wide = |v: &BoxedUint| v.resize_unchecked(w);
            let want = wide(&xs[0])
                .wrapping_mul(wide(&ys[0]))
                .wrapping_add(wide(&xs[1]).wrapping_mul(wide(&ys[1])));
            // α − β = Σ xₖyₖ exactly, over the integers.
            assert_eq!(alpha.wrapping_sub(&*reply.beta), want);
            assert!(reply.beta.bit_width_vartime() as usize <= mta.beta_bits());
            // Reduced into a ring: α mod q + (−β mod q) ≡ Σ xₖyₖ.
            let q = NonZero::new(BoxedUint::from(1_000_003u64).resize_unchecked(w)).unwrap();
            let sum = reduce(&alpha, &q)
                .wrapping_add(&*neg_reduce(&reply.beta, &q))
                .rem(&q);
            assert_eq!(sum, want.rem(&q));
        }
    }

    #[test]
    fn shapes_that_could_wrap_are_refused() {
        let sk = key(3);
        let pk = sk.public();
        // 2048-bit key: 1024 × 1024 + 128 + 1 + 1 > 2047.
        assert!(Mta::new(pk, 1024, 1024, 1).is_err());
        assert!(Mta::new(pk, 900, 1000, 2).is_ok());
        assert!(Mta::new(pk, 0, 10, 1).is_err());
        // Inputs wider than declared are refused rather than silently wrapping.
        let mta = Mta::new(pk, 64, 64, 1).unwrap();
        let mut rng = SeededRng::new(3, 0);
        let wide = rand(&mut rng, 200).wrapping_add(BoxedUint::one_with_precision(2048).shl(150));
        assert!(mta.encrypt(std::slice::from_ref(&wide), &mut rng).is_err());
        let ct = mta.encrypt(&[BoxedUint::from(5u64)], &mut rng).unwrap();
        assert!(
            mta.reply(&ct, std::slice::from_ref(&wide), &mut rng)
                .is_err()
        );
        // A precomputed randomiser gives the same identity; one of another key is refused.
        let r = pk.randomiser(&mut rng).unwrap();
        let pre = mta
            .reply_with(&ct, &[BoxedUint::from(6u64)], Some(r), &mut rng)
            .unwrap();
        assert_eq!(
            mta.finish(&sk, &pre.ciphertext)
                .unwrap()
                .wrapping_sub(&*pre.beta),
            BoxedUint::from(30u64).resize_unchecked(2048)
        );
        let foreign = key(5).public().randomiser(&mut rng).unwrap();
        assert!(
            mta.reply_with(&ct, &[BoxedUint::from(6u64)], Some(foreign), &mut rng)
                .is_err()
        );
        // A reply decrypted under another key is refused.
        let other = key(4);
        let reply = mta.reply(&ct, &[BoxedUint::from(7u64)], &mut rng).unwrap();
        assert!(mta.finish(&other, &reply.ciphertext).is_err());
        assert_eq!(
            mta.finish(&sk, &reply.ciphertext)
                .unwrap()
                .wrapping_sub(&*reply.beta),
            BoxedUint::from(35u64).resize_unchecked(2048)
        );
    }
}
