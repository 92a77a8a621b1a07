//! Distributed sieving (Malkin–Wu–Boneh; "The return of Eratosthenes"; CRYPTO-NOTES §1.4).
//!
//! Each party picks aᵢ uniform in Z_M^*, M = Π of the odd primes n ≤ ℓ ≤ B1, so that
//! a = Π aᵢ mod M is a unit: p ≡ a (mod M) has no prime factor ≤ B1. The multiplicative
//! shares become additive ones (Σ bᵢ ≡ a mod M) with BGW products over Z_M: share every aᵢ
//! (degree t), multiply the running product by the next aᵢ (degree 2t), reduce the degree by
//! resharing, and finally scale the degree-2t point by its Lagrange coefficient. That costs
//! n − 1 rounds (one deal, n − 2 reshares) per batch and no broadcast.
//!
//! Candidate shares: pᵢ = bᵢ + M·mᵢ (+ O for party 0), mᵢ = 4uᵢ + cᵢ with cᵢ ∈ [0,4) chosen so
//! that p₀ ≡ 3 and pᵢ ≡ 0 (mod 4) (§1.2), uᵢ uniform in [0, U), and the public offset O the
//! least multiple of 4M ≥ 3·2^(K−2). Then p ≡ a (mod M), p ≡ 3 (mod 4) and
//! 3·2^(K−2) ≤ p < 2^K, so N = pq has exactly 2K bits. U is the largest power of two with
//! 4M(1 + nU) ≤ 2^(K−2); with |M| ≤ K − 16 that is U ≥ 2^10 for n ≤ 3.

use crypto_bigint::{BoxedUint, NonZero, Resize};
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
    m_mod4: u64,
    /// Precision of candidate shares: K bits plus a limb.
    pub(crate) precision: u32,
}

impl SieveParams {
    pub(crate) fn new(k: usize, n: usize) -> Result<SieveParams> {
        let precision = (k + 64) as u32;
        // Primes ≥ n keep every Lagrange denominator (differences < n) invertible mod M.
        let mut m = BoxedUint::one_with_precision(precision);
        let mut used = Vec::new();
        for l in primes_below(1 << 16)
            .into_iter()
            .filter(|&l| l >= 3 && l as usize >= n)
        {
            let next = m.wrapping_mul(BoxedUint::from(l as u64).resize_unchecked(precision));
            if next.bit_width_vartime() as usize > k - 16 {
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
        let four_m = m.shl_vartime(2).expect("fits");
        let low = BoxedUint::from(3u64)
            .resize_unchecked(precision)
            .shl_vartime((k - 2) as u32)
            .expect("fits");
        let q = low
            .wrapping_add(&four_m)
            .wrapping_sub(BoxedUint::one_with_precision(precision))
            .div_rem_vartime(&NonZero::new(four_m.clone()).expect("M ≥ 1"))
            .0;
        let offset = q.wrapping_mul(&four_m);
        // Largest U = 2^u with 4M(1 + nU) ≤ 2^(K−2).
        let room = BoxedUint::one_with_precision(precision)
            .shl_vartime((k - 2) as u32)
            .expect("fits")
            .div_rem_vartime(&NonZero::new(four_m).expect("M ≥ 1"))
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
            m_mod4: m.as_words()[0] & 3,
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
        let target = if me == 0 { 3u64 } else { 0 };
        // c ≡ (target − b)·M⁻¹ (mod 4), and M⁻¹ ≡ M (mod 4) for odd M.
        let c = (target
            .wrapping_sub(b.as_words()[0])
            .wrapping_mul(self.m_mod4))
            & 3;
        let u = random_bits(rng, self.u_bits as usize, 64)?.as_words()[0];
        let mult = Zeroizing::new(BoxedUint::from(4 * u + c).resize_unchecked(self.precision));
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
