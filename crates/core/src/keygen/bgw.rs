//! Secure products of additively shared values, opened to every party.
//!
//! `Multiplier` is the seam between the protocol and how products are computed: `Bgw` here
//! (honest majority, CRYPTO-NOTES §1.3); a Paillier MtA implementation (§1.9, customer mode)
//! fits the same shape with two pairwise rounds (Enc, response) before its opening round.

use crypto_bigint::BoxedUint;
use zeroize::Zeroizing;

use super::msg::Reader;
use super::rng::KeygenRng;
use super::zmod::{Elem, Zmod};
use super::{KeygenError, Result};

/// Confidential payloads of one round, by receiver.
pub type Payloads = Vec<(usize, Vec<u8>)>;

/// What a multiplier wants after a pairwise round.
pub enum MulStep {
    /// Another pairwise round: one confidential payload per peer.
    Pairwise(Vec<(usize, Vec<u8>)>),
    /// This party's public opening share, to broadcast.
    Open(Vec<u8>),
}

/// Computes, for a batch, the public values (Σᵢ xᵢ[k])·(Σᵢ yᵢ[k]) (reduced modulo the
/// multiplier's modulus) from each party's additive shares xᵢ, yᵢ, revealing nothing else.
pub trait Multiplier {
    /// First pairwise round for this party's secret inputs (one payload per peer).
    fn begin(
        &mut self,
        xs: &[BoxedUint],
        ys: &[BoxedUint],
        rng: &mut dyn KeygenRng,
    ) -> Result<Vec<(usize, Vec<u8>)>>;
    /// Every peer's payload of the last pairwise round, by sender.
    fn advance(&mut self, inbox: &[(usize, &[u8])], rng: &mut dyn KeygenRng) -> Result<MulStep>;
    /// Every peer's opening share, by sender: the public products.
    fn open(&mut self, shares: &[(usize, &[u8])]) -> Result<Vec<BoxedUint>>;
}

/// BGW over Z_m: degree-t Shamir sharings of x and y plus a degree-2t sharing of 0 to
/// re-randomise; each party opens f(j)·g(j) + h(j); interpolation at 0 gives x·y mod m.
pub struct Bgw {
    me: usize,
    n: usize,
    t: usize,
    zm: Zmod,
    lagrange: Vec<Elem>,
    count: usize,
    /// Own points of (f, g, h) per product while the deal is outstanding.
    own: Zeroizing<Vec<Elem>>,
    /// Own opening point per product.
    opened: Vec<Elem>,
    /// Degree of the zero sharing h: 2t for an opening; n − 1 when the product is kept as
    /// additive shares (customer mode), so that the n points are uniform given their sum.
    mask_degree: usize,
}

impl Bgw {
    /// The modulus must be odd, with no prime factor below n; for exact integer products it
    /// must exceed every product (P > 2^(2K+2⌈log₂n⌉+1) for N).
    pub fn new(me: usize, n: usize, modulus: &BoxedUint) -> Result<Bgw> {
        let zm = Zmod::new(modulus)?;
        let xs: Vec<u64> = (1..=n as u64).collect();
        let lagrange = zm.lagrange_at_zero(&xs)?;
        Ok(Bgw {
            me,
            n,
            t: (n - 1) / 2,
            zm,
            lagrange,
            count: 0,
            own: Zeroizing::new(Vec::new()),
            opened: Vec::new(),
            mask_degree: 2 * ((n - 1) / 2),
        })
    }

    /// Customer mode: the product stays additive (`additive_shares`), never `open`ed. With a
    /// zero sharing of degree n − 1 the parties' points λⱼ·c(j) are uniform subject to their
    /// sum even when n > 2t + 1; with degree 2t they would satisfy public linear relations,
    /// which, next to the MtA values, would tell the customer a linear relation among the
    /// cells' shares.
    pub(crate) fn additive_only(mut self) -> Bgw {
        self.mask_degree = self.n - 1;
        self
    }

    /// Customer mode: after `advance`, this party's additive share λ_me·c(me) of every product
    /// (Σ over the parties = the product mod m), kept private instead of opened.
    pub(crate) fn additive_shares(&self) -> Zeroizing<Vec<Elem>> {
        let lam = &self.lagrange[self.me];
        Zeroizing::new(self.opened.iter().map(|c| c.mul(lam)).collect())
    }

    /// Bytes one party sends to one peer per product in the deal round.
    pub fn deal_bytes_per_product(&self) -> usize {
        3 * self.zm.bytes
    }
}

impl Multiplier for Bgw {
    fn begin(
        &mut self,
        xs: &[BoxedUint],
        ys: &[BoxedUint],
        rng: &mut dyn KeygenRng,
    ) -> Result<Vec<(usize, Vec<u8>)>> {
        if xs.len() != ys.len() {
            return Err(KeygenError::Params("input lengths differ"));
        }
        self.count = xs.len();
        let per_peer = self.count * self.deal_bytes_per_product();
        let mut out: Vec<(usize, Vec<u8>)> = (0..self.n)
            .filter(|&j| j != self.me)
            .map(|j| (j, Vec::with_capacity(per_peer)))
            .collect();
        let mut own = Zeroizing::new(Vec::with_capacity(3 * self.count));
        let zero = self.zm.zero();
        for (x, y) in xs.iter().zip(ys) {
            let f = self.zm.share(&self.zm.elem(x), self.t, self.n, rng)?;
            let g = self.zm.share(&self.zm.elem(y), self.t, self.n, rng)?;
            let h = self.zm.share(&zero, self.mask_degree, self.n, rng)?;
            for (j, body) in out.iter_mut() {
                for v in [&f[*j], &g[*j], &h[*j]] {
                    self.zm.encode(v, body);
                }
            }
            own.extend([f[self.me].clone(), g[self.me].clone(), h[self.me].clone()]);
        }
        self.own = own;
        Ok(out)
    }

    fn advance(&mut self, inbox: &[(usize, &[u8])], _rng: &mut dyn KeygenRng) -> Result<MulStep> {
        let mut sums = std::mem::take(&mut self.own);
        if sums.len() != 3 * self.count {
            return Err(KeygenError::Failed("product advanced before it began"));
        }
        for (_, body) in inbox {
            let mut r = Reader(body);
            for s in sums.iter_mut() {
                *s = s.add(&self.zm.decode(r.take(self.zm.bytes)?)?);
            }
            r.finish()?;
        }
        let mut body = Vec::with_capacity(self.count * self.zm.bytes);
        self.opened = sums
            .chunks_exact(3)
            .map(|c| c[0].mul(&c[1]).add(&c[2]))
            .collect();
        for z in &self.opened {
            self.zm.encode(z, &mut body);
        }
        Ok(MulStep::Open(body))
    }

    fn open(&mut self, shares: &[(usize, &[u8])]) -> Result<Vec<BoxedUint>> {
        if self.mask_degree != 2 * self.t {
            return Err(KeygenError::Failed(
                "an additive-only product is never opened",
            ));
        }
        // points[j][k]: party j's opening of product k.
        let mut points: Vec<Option<Vec<Elem>>> = vec![None; self.n];
        points[self.me] = Some(std::mem::take(&mut self.opened));
        for (j, body) in shares {
            let mut r = Reader(body);
            let v = (0..self.count)
                .map(|_| self.zm.decode(r.take(self.zm.bytes)?))
                .collect::<Result<Vec<_>>>()?;
            r.finish()?;
            points[*j] = Some(v);
        }
        let points: Vec<Vec<Elem>> = points
            .into_iter()
            .map(|p| p.ok_or(KeygenError::Failed("missing opening share")))
            .collect::<Result<_>>()?;
        // With n > 2t+1 points, two different 2t+1-subsets must agree (CRYPTO-NOTES §1.3).
        let deg = 2 * self.t + 1;
        let check = if self.n > deg {
            let lo: Vec<u64> = (1..=deg as u64).collect();
            let hi: Vec<u64> = ((self.n - deg + 1) as u64..=self.n as u64).collect();
            Some((
                self.zm.lagrange_at_zero(&lo)?,
                self.zm.lagrange_at_zero(&hi)?,
            ))
        } else {
            None
        };
        let mut out = Vec::with_capacity(self.count);
        for k in 0..self.count {
            let col: Vec<Elem> = points.iter().map(|p| p[k].clone()).collect();
            let v = self.zm.combine(&self.lagrange, &col);
            if let Some((lo, hi)) = &check {
                let a = self.zm.combine(lo, &col[..deg]);
                let b = self.zm.combine(hi, &col[self.n - deg..]);
                if a.retrieve() != b.retrieve() {
                    return Err(KeygenError::Failed("opening shares are inconsistent"));
                }
            }
            out.push(v.retrieve());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keygen::SeededRng;
    use crypto_bigint::Resize;

    /// n parties run the deal in process; returns every party's multiplier after `advance`.
    fn run(n: usize, xs: &[u64], ys: &[u64], additive: bool) -> (Vec<Bgw>, Zmod) {
        let p = BoxedUint::from(1_000_000_007u64).resize_unchecked(64);
        let mut rngs: Vec<SeededRng> = (0..n).map(|i| SeededRng::new(5, i)).collect();
        let mut muls: Vec<Bgw> = (0..n)
            .map(|i| {
                let m = Bgw::new(i, n, &p).unwrap();
                if additive { m.additive_only() } else { m }
            })
            .collect();
        let mut inbox: Vec<Vec<(usize, Vec<u8>)>> = vec![Vec::new(); n];
        for (i, m) in muls.iter_mut().enumerate() {
            let x = [BoxedUint::from(xs[i])];
            let y = [BoxedUint::from(ys[i])];
            for (j, body) in m.begin(&x, &y, &mut rngs[i]).unwrap() {
                inbox[j].push((i, body));
            }
        }
        for (i, m) in muls.iter_mut().enumerate() {
            let refs: Vec<(usize, &[u8])> =
                inbox[i].iter().map(|(j, b)| (*j, b.as_slice())).collect();
            assert!(matches!(
                m.advance(&refs, &mut rngs[i]).unwrap(),
                MulStep::Open(_)
            ));
        }
        (muls, Zmod::new(&p).unwrap())
    }

    #[test]
    fn additive_shares_sum_to_the_product_for_any_cell_count() {
        for n in [3usize, 4, 5] {
            let xs: Vec<u64> = (0..n as u64).map(|i| 1000 + 17 * i).collect();
            let ys: Vec<u64> = (0..n as u64).map(|i| 2000 + 31 * i).collect();
            let want = xs.iter().sum::<u64>() * ys.iter().sum::<u64>() % 1_000_000_007;
            let (muls, zm) = run(n, &xs, &ys, true);
            let mut sum = zm.zero();
            for m in &muls {
                sum = sum.add(&m.additive_shares()[0]);
            }
            assert_eq!(sum.retrieve(), BoxedUint::from(want).resize_unchecked(64));
            // An additive-only product refuses to be opened.
            let mut m0 = muls.into_iter().next().unwrap();
            assert!(m0.open(&[]).is_err());
        }
    }

    #[test]
    fn opened_products_still_check_consistency() {
        let (mut muls, _) = run(4, &[3, 4, 5, 6], &[7, 8, 9, 10], false);
        let bodies: Vec<Vec<u8>> = muls
            .iter()
            .map(|m| {
                let mut b = Vec::new();
                for z in &m.opened {
                    m.zm.encode(z, &mut b);
                }
                b
            })
            .collect();
        let refs: Vec<(usize, &[u8])> = (1..4).map(|j| (j, bodies[j].as_slice())).collect();
        assert_eq!(
            muls[0].open(&refs).unwrap()[0],
            BoxedUint::from(18u64 * 34).resize_unchecked(64)
        );
    }
}
