//! Distributed sieving (Malkin–Wu–Boneh; "The return of Eratosthenes"; CRYPTO-NOTES §1.4).
//!
//! Each party picks aᵢ uniform in Z_M^*, M = Π of the odd primes n < ℓ ≤ B1, so that
//! a = Π aᵢ mod M is a unit: p ≡ a (mod M) has no prime factor in M. The multiplicative
//! shares become additive ones (Σ bᵢ ≡ a mod M) with BGW products over Z_M: share every aᵢ
//! (degree t), multiply the running product by the next aᵢ (degree 2t), reduce the degree by
//! resharing, and finally scale the degree-2t point by its Lagrange coefficient. That costs
//! n − 1 rounds (one deal, n − 2 reshares) per batch and no broadcast.
//!
//! Why M leaves out the odd primes ℓ ≤ n: Shamir over Z_ℓ needs n distinct nonzero points, and
//! party j's point j + 1 ≡ 0 (mod ℓ) for j + 1 = ℓ would hand that party the secret mod ℓ (with
//! three parties and ℓ = 3, the third party would learn every aᵢ mod 3, so p mod 3). Those
//! primes are sieved publicly instead: Q = 4·Π(odd ℓ ≤ n) and p ≡ −1 (mod Q), so p ≡ 3
//! (mod 4) as the biprimality test needs, and p ≡ 2 (mod 3) is never a multiple of 3 — with
//! no loss of sieving against a secret residue mod 3 (a prime of the range is ≡ 2 with
//! probability ½, and that public bit reveals nothing a factoring method can use).
//!
//! Candidate shares: pᵢ = bᵢ + M·mᵢ (+ O for party 0), mᵢ = Q·uᵢ + cᵢ with cᵢ ∈ [0, Q) chosen
//! so that p₀ ≡ Q − 1 and pᵢ ≡ 0 (mod Q) (§1.2), uᵢ uniform in [0, U), and the public offset
//! O the least multiple of QM ≥ 3·2^(K−2). Then p ≡ a (mod M), p ≡ −1 (mod Q) and
//! 3·2^(K−2) ≤ p < 2^K, so N = pq has exactly 2K bits. U is the largest power of two with
//! QM(1 + nU) ≤ 2^(K−2); M stops at K − 18 bits, so U ≥ 2^9 for n ≤ 4 (Q = 12).

use crypto_bigint::{BoxedUint, Limb, NonZero, Resize};
use zeroize::Zeroizing;

use super::bgw::Payloads;
use super::msg::Reader;
use super::primes::primes_below;
use super::rng::{KeygenRng, random_bits, uniform_small};
use super::zmod::{Elem, Zmod};
use super::{KeygenError, Result};

/// Public sieve parameters for (K, n).
pub(crate) struct SieveParams {
    pub(crate) zm: Zmod,
    /// E_ℓ ≡ 1 (mod ℓ), ≡ 0 (mod M/ℓ): a = Σ r_ℓ·E_ℓ is uniform in Z_M^* for r_ℓ ∈ [1, ℓ).
    crt: Vec<(u32, BoxedUint)>,
    offset: BoxedUint,
    /// log₂ U.
    u_bits: u32,
    /// Q = 4·Π(odd primes ≤ n): the public residue modulus.
    q: u64,
    /// M⁻¹ mod Q.
    m_inv_q: u64,
    /// Precision of candidate shares: K bits plus a limb.
    pub(crate) precision: u32,
}

impl SieveParams {
    pub(crate) fn new(k: usize, n: usize) -> Result<SieveParams> {
        let precision = (k + 64) as u32;
        // Only primes above n: every party's point x ≤ n is then a unit mod M, and so is
        // every Lagrange denominator (differences < n). The rest are sieved publicly (Q).
        let small = primes_below(n as u32 + 1);
        let q = small
            .iter()
            .filter(|&&l| l >= 3)
            .fold(4u64, |acc, &l| acc * l as u64);
        let mut m = BoxedUint::one_with_precision(precision);
        let mut used = Vec::new();
        for l in primes_below(1 << 16)
            .into_iter()
            .filter(|&l| l >= 3 && l as usize > n)
        {
            let next = m.wrapping_mul(BoxedUint::from(l as u64).resize_unchecked(precision));
            if next.bit_width_vartime() as usize > k - 18 {
                break;
            }
            m = next;
            used.push(l);
        }
        let nz_m = NonZero::new(m.clone()).expect("M ≥ 1");
        let mut crt = Vec::with_capacity(used.len());
        for &l in &used {
            let lb = BoxedUint::from(l as u64).resize_unchecked(precision);
            let cof = m
                .div_rem_vartime(&NonZero::new(lb.clone()).expect("l > 0"))
                .0;
            // E_ℓ = cof·(cof⁻¹ mod ℓ).
            let cof_mod = cof
                .rem_vartime(&NonZero::new(lb).expect("l > 0"))
                .as_words()[0];
            let inv = (1..l as u64)
                .find(|i| i * cof_mod % l as u64 == 1)
                .ok_or(KeygenError::Params("sieve CRT"))?;
            let e = cof.wrapping_mul(BoxedUint::from(inv).resize_unchecked(precision));
            crt.push((l, e.rem_vartime(&nz_m)));
        }
        let m_mod_q = m
            .rem_vartime(
                &NonZero::new(BoxedUint::from(q).resize_unchecked(precision)).expect("Q > 0"),
            )
            .as_words()[0];
        let m_inv_q = (1..q)
            .find(|i| i * m_mod_q % q == 1)
            .ok_or(KeygenError::Params("sieve modulus shares a factor with Q"))?;
        let qm = m.wrapping_mul(BoxedUint::from(q).resize_unchecked(precision));
        let low = BoxedUint::from(3u64)
            .resize_unchecked(precision)
            .shl_vartime((k - 2) as u32)
            .expect("fits");
        let quot = low
            .wrapping_add(&qm)
            .wrapping_sub(BoxedUint::one_with_precision(precision))
            .div_rem_vartime(&NonZero::new(qm.clone()).expect("M ≥ 1"))
            .0;
        let offset = quot.wrapping_mul(&qm);
        // Largest U = 2^u with QM(1 + nU) ≤ 2^(K−2).
        let room = BoxedUint::one_with_precision(precision)
            .shl_vartime((k - 2) as u32)
            .expect("fits")
            .div_rem_vartime(&NonZero::new(qm).expect("M ≥ 1"))
            .0;
        let room = u64::try_from(
            room.to_be_bytes_trimmed_vartime()
                .iter()
                .fold(0u128, |a, &b| (a << 8) | b as u128),
        )
        .unwrap_or(u64::MAX);
        let u_max = room.saturating_sub(1) / n as u64;
        if u_max == 0 || used.is_empty() {
            return Err(KeygenError::Params("modulus too small for sieving"));
        }
        let u_bits = 63 - u_max.leading_zeros();
        Ok(SieveParams {
            zm: Zmod::new(&m)?,
            q,
            m_inv_q,
            crt,
            offset,
            u_bits,
            precision,
        })
    }

    /// A uniform unit of Z_M, by CRT from uniform nonzero residues (no rejection, no leak).
    pub(crate) fn unit(&self, rng: &mut dyn KeygenRng) -> Result<Elem> {
        // Σ r_ℓ·E_ℓ < (#ℓ)·2^16·M fits M's words plus one; word-by-limb products, no
        // branches on the r_ℓ.
        let len = self.zm.precision() as usize / 64 + 1;
        let mut acc = Zeroizing::new(vec![0u64; len]);
        for (l, e) in &self.crt {
            let r = Zeroizing::new(1 + uniform_small(rng, *l as u64 - 1)?);
            let mut carry = 0u64;
            for (a, &w) in acc.iter_mut().zip(e.as_words().iter().chain([&0u64])) {
                let t = u128::from(w) * u128::from(*r) + u128::from(*a) + u128::from(carry);
                *a = t as u64;
                carry = (t >> 64) as u64;
            }
        }
        let acc = Zeroizing::new(BoxedUint::from_words(acc.iter().copied()));
        Ok(self.zm.elem(&acc))
    }

    /// Party `me`'s candidate share from its additive sieve share b ∈ [0, M).
    pub(crate) fn candidate(
        &self,
        me: usize,
        b: &Elem,
        rng: &mut dyn KeygenRng,
    ) -> Result<BoxedUint> {
        let b = Zeroizing::new(b.retrieve().resize_unchecked(self.precision));
        let q = self.q;
        let target = if me == 0 { q - 1 } else { 0 };
        // c ≡ (target − b)·M⁻¹ (mod Q), with constant-time limb reductions (b is secret).
        let q_limb = NonZero::new(Limb(q)).expect("Q > 0");
        let b_mod_q = Zeroizing::new(b.rem_limb(q_limb).0);
        // (target + Q − b mod Q)·M⁻¹ < 2Q² < 2^64 for Q ≤ 4·3·5·7·11·13 (16 parties).
        let t = Zeroizing::new(BoxedUint::from((target + q - *b_mod_q) * self.m_inv_q));
        let c = Zeroizing::new(t.rem_limb(q_limb).0);
        let u = random_bits(rng, self.u_bits as usize, 64)?.as_words()[0];
        let mult = Zeroizing::new(BoxedUint::from(q * u + *c).resize_unchecked(self.precision));
        let m = self.zm.modulus().resize_unchecked(self.precision);
        let mut p = Zeroizing::new(b.wrapping_add(m.wrapping_mul(&*mult)));
        if me == 0 {
            *p = p.wrapping_add(&self.offset);
        }
        Ok(BoxedUint::clone(&p))
    }
}

/// One party's conversion state for a batch of `count` sieved values.
pub(crate) struct SieveRun {
    me: usize,
    n: usize,
    t: usize,
    count: usize,
    lagrange: Vec<Elem>,
    /// Own points of every party's aᵢ sharing: [party][value].
    a_points: Zeroizing<Vec<Elem>>,
    /// Degree-t points of the running product (per value), after the last reshare.
    running: Zeroizing<Vec<Elem>>,
    /// Index of the next factor to multiply in.
    next: usize,
    /// Customer mode: stop at the additive shares bᵢ (the customer's factor still has to be
    /// multiplied in by MtA) instead of making candidates.
    shares_only: bool,
}

impl SieveRun {
    /// Deal Shamir shares of fresh units a (count values): payload per peer.
    pub(crate) fn deal(
        sp: &SieveParams,
        me: usize,
        n: usize,
        count: usize,
        rng: &mut dyn KeygenRng,
    ) -> Result<(SieveRun, Payloads)> {
        let t = (n - 1) / 2;
        let mut out: Vec<(usize, Vec<u8>)> = (0..n)
            .filter(|&j| j != me)
            .map(|j| (j, Vec::with_capacity(count * sp.zm.bytes)))
            .collect();
        let mut own = Zeroizing::new(Vec::with_capacity(count));
        for _ in 0..count {
            let a = Zeroizing::new(sp.unit(rng)?);
            let pts = sp.zm.share(&a, t, n, rng)?;
            for (j, body) in out.iter_mut() {
                sp.zm.encode(&pts[*j], body);
            }
            own.push(pts[me].clone());
        }
        let xs: Vec<u64> = (1..=n as u64).collect();
        let run = SieveRun {
            me,
            n,
            t,
            count,
            lagrange: sp.zm.lagrange_at_zero(&xs)?,
            a_points: own,
            running: Zeroizing::new(Vec::new()),
            next: 0,
            shares_only: false,
        };
        Ok((run, out))
    }

    /// After the deal: gather the points of every aᵢ, then multiply.
    pub(crate) fn after_deal(
        &mut self,
        sp: &SieveParams,
        inbox: &[(usize, &[u8])],
        rng: &mut dyn KeygenRng,
    ) -> Result<SieveStep> {
        let mut by_party: Vec<Option<Zeroizing<Vec<Elem>>>> = (0..self.n).map(|_| None).collect();
        by_party[self.me] = Some(std::mem::take(&mut self.a_points));
        for (j, body) in inbox {
            let mut r = Reader(body);
            let mut v = Zeroizing::new(Vec::with_capacity(self.count));
            for _ in 0..self.count {
                v.push(sp.zm.decode(r.take(sp.zm.bytes)?)?);
            }
            r.finish()?;
            by_party[*j] = Some(v);
        }
        let mut flat = Zeroizing::new(Vec::with_capacity(self.n * self.count));
        for p in by_party {
            flat.extend(
                p.ok_or(KeygenError::Failed("missing sieve share"))?
                    .iter()
                    .cloned(),
            );
        }
        self.a_points = flat;
        self.running = Zeroizing::new(self.a_points[..self.count].to_vec());
        self.next = 1;
        self.multiply(sp, rng)
    }

    /// Running product × next factor (degree 2t); reshare it unless it is the last factor.
    fn multiply(&mut self, sp: &SieveParams, rng: &mut dyn KeygenRng) -> Result<SieveStep> {
        let base = self.next * self.count;
        let prod: Zeroizing<Vec<Elem>> = Zeroizing::new(
            self.running
                .iter()
                .zip(&self.a_points[base..base + self.count])
                .map(|(c, a)| c.mul(a))
                .collect(),
        );
        self.next += 1;
        if self.next == self.n {
            // Additive share of a: λ_me·c(me), Σ over parties = c(0) = a (mod M).
            let lam = &self.lagrange[self.me];
            let b: Zeroizing<Vec<Elem>> = Zeroizing::new(prod.iter().map(|c| c.mul(lam)).collect());
            if self.shares_only {
                return Ok(SieveStep::Shares(b));
            }
            let mut cands = Zeroizing::new(Vec::with_capacity(self.count));
            for v in b.iter() {
                cands.push(sp.candidate(self.me, v, rng)?);
            }
            return Ok(SieveStep::Done(cands));
        }
        let mut out: Vec<(usize, Vec<u8>)> = (0..self.n)
            .filter(|&j| j != self.me)
            .map(|j| (j, Vec::with_capacity(self.count * sp.zm.bytes)))
            .collect();
        let mut own = Zeroizing::new(Vec::with_capacity(self.count));
        for c in prod.iter() {
            let pts = sp.zm.share(c, self.t, self.n, rng)?;
            for (j, body) in out.iter_mut() {
                sp.zm.encode(&pts[*j], body);
            }
            own.push(pts[self.me].clone());
        }
        self.running = own;
        Ok(SieveStep::Send(out))
    }

    /// After a reshare: the new degree-t point is Σᵢ λᵢ·(party i's subshare).
    pub(crate) fn after_reshare(
        &mut self,
        sp: &SieveParams,
        inbox: &[(usize, &[u8])],
        rng: &mut dyn KeygenRng,
    ) -> Result<SieveStep> {
        let own = std::mem::take(&mut self.running);
        let mut acc: Zeroizing<Vec<Elem>> =
            Zeroizing::new(own.iter().map(|v| v.mul(&self.lagrange[self.me])).collect());
        for (j, body) in inbox {
            let mut r = Reader(body);
            for a in acc.iter_mut() {
                let v = Zeroizing::new(sp.zm.decode(r.take(sp.zm.bytes)?)?);
                *a = a.add(&v.mul(&self.lagrange[*j]));
            }
            r.finish()?;
        }
        self.running = acc;
        self.multiply(sp, rng)
    }
}

pub(crate) enum SieveStep {
    /// Reshare payloads for the next round.
    Send(Vec<(usize, Vec<u8>)>),
    /// This party's candidate shares, one per value.
    Done(Zeroizing<Vec<BoxedUint>>),
    /// Customer mode: this cell's additive share of the cells' product, one per value.
    Shares(Zeroizing<Vec<Elem>>),
}

impl SieveRun {
    /// Customer mode: end with the cells' additive shares (`SieveStep::Shares`).
    pub(crate) fn shares_only(mut self) -> SieveRun {
        self.shares_only = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keygen::rng::OsRng;

    fn small(v: &BoxedUint, l: u64) -> u64 {
        v.rem_vartime(
            &NonZero::new(BoxedUint::from(l).resize_unchecked(v.bits_precision())).unwrap(),
        )
        .as_words()[0]
    }

    /// Every party's Shamir point 1..=n is a unit mod M: no party's share reveals a secret's
    /// residue mod a prime of M (with ℓ = 3 in M and three parties, the third one would).
    #[test]
    fn shamir_points_are_units_mod_m() {
        for n in 3..=8 {
            let sp = SieveParams::new(512, n).unwrap();
            let m = sp.zm.modulus();
            for l in primes_below(n as u32 + 1).into_iter().filter(|&l| l >= 3) {
                assert_ne!(small(m, l as u64), 0, "n = {n}: {l} divides M");
                assert_eq!(sp.q % l as u64, 0, "n = {n}: {l} is sieved publicly");
            }
            assert_eq!(sp.q % 4, 0);
        }
        // The next prime above n is in M: nothing else is left out.
        assert_eq!(small(SieveParams::new(512, 3).unwrap().zm.modulus(), 5), 0);
        assert_eq!(small(SieveParams::new(512, 4).unwrap().zm.modulus(), 5), 0);
    }

    /// Σ candidate shares ≡ a (mod M), ≡ −1 (mod Q), and has exactly K bits, for sums at
    /// the extremes of the shares' ranges.
    #[test]
    fn candidates_sum_to_a_prime_shaped_value() {
        for (k, n) in [(512, 3), (512, 4), (1024, 4), (768, 5)] {
            let sp = SieveParams::new(k, n).unwrap();
            let m = sp.zm.modulus().clone();
            let top = m.wrapping_sub(BoxedUint::one_with_precision(m.bits_precision()));
            for round in 0..64 {
                let bs: Vec<Elem> = (0..n)
                    .map(|_| match round % 3 {
                        0 => sp.zm.elem(&top),
                        1 => sp.zm.zero(),
                        _ => sp.zm.random(&mut OsRng).unwrap(),
                    })
                    .collect();
                let a = bs.iter().fold(sp.zm.zero(), |acc, b| acc.add(b)).retrieve();
                let mut p = BoxedUint::zero_with_precision(sp.precision);
                for (i, b) in bs.iter().enumerate() {
                    let c = sp.candidate(i, b, &mut OsRng).unwrap();
                    assert_eq!(small(&c, sp.q), if i == 0 { sp.q - 1 } else { 0 });
                    p = p.wrapping_add(&c);
                }
                assert_eq!(p.bit_width_vartime() as usize, k, "K bits");
                assert!(
                    p >= BoxedUint::from(3u64)
                        .resize_unchecked(sp.precision)
                        .shl_vartime(k as u32 - 2)
                        .unwrap()
                );
                assert_eq!(small(&p, sp.q), sp.q - 1, "p ≡ −1 (mod Q)");
                assert_eq!(small(&p, 4), 3);
                let p_mod_m =
                    p.rem_vartime(&NonZero::new(m.clone().resize_unchecked(sp.precision)).unwrap());
                assert_eq!(p_mod_m, a.resize_unchecked(sp.precision), "p ≡ a (mod M)");
            }
        }
    }
}
