//! The full test, the checks and the d-share rounds of one accepted candidate
//! (CRYPTO-NOTES §1.5, §1.6, §2.4).

use crypto_bigint::{BoxedUint, Gcd, NonZero, Resize};
use zeroize::Zeroizing;

use crate::rsa_partial::rsa_partial;
use crate::rsa_share::SHARE_HIDING_BITS;

use super::super::bgw::{Bgw, MulStep, Multiplier};
use super::super::biprime::{self, Modulus};
use super::super::dexp::{self, E};
use super::super::msg::{Message, Phase, Reader};
use super::super::rng::{KeygenRng, uniform_mod};
use super::super::{GeneratedShare, KeygenError, Result};
use super::{Current, Party, State};
use crate::signed::{Signed, zero_sum_row};

impl<R: KeygenRng> Party<R> {
    /// Counted iterations (broadcast), the gcd product deal and the φ masks (pairwise).
    pub(super) fn begin_full_test(&mut self, idx: usize) -> Result<Vec<Message>> {
        self.stats.full_tests += 1;
        let m = Modulus::new(&self.moduli[idx]);
        let (p, q) = (&self.ps[idx], &self.qs[idx]);
        let exps = biprime::Exponents::new(self.me, &m, p, q, self.k);
        let mut bcast = Vec::with_capacity(self.params.iterations * m.zn.bytes);
        let mut own_test = Vec::with_capacity(self.params.iterations);
        let bases = biprime::test_bases(&self.params.session, &m, self.params.iterations);
        let ctx = m.pow_ctx();
        for (it, g) in bases.iter().enumerate() {
            let v = exps.value(
                &m,
                ctx.as_ref(),
                g,
                biprime::carrier(idx, it, self.n) == self.me,
            );
            m.zn.encode(&v, &mut bcast);
            own_test.push(v);
        }
        // gcd(N, p+q−1) through z = r·ψ mod N, r = Σ rᵢ uniform (§1.5).
        let prec = m.n.bits_precision();
        let nz = NonZero::new(m.n.clone()).expect("N > 0");
        let r = uniform_mod(&mut self.rng, &nz)?;
        let s = Zeroizing::new(
            p.resize_unchecked(prec)
                .wrapping_add(q.resize_unchecked(prec)),
        );
        let psi = Zeroizing::new(if self.me == 0 {
            s.wrapping_sub(BoxedUint::one_with_precision(prec))
        } else {
            BoxedUint::clone(&s)
        });
        let mut gcd = Bgw::new(self.me, self.n, &m.n)?;
        let deal = gcd.begin(
            std::slice::from_ref(&*r),
            std::slice::from_ref(&*psi),
            &mut self.rng,
        )?;
        let masks = dexp::masks(&mut self.rng, self.n)?;
        let pair = deal
            .into_iter()
            .map(|(j, payload)| {
                let mut body = (masks[j] as u32).to_be_bytes().to_vec();
                body.extend_from_slice(&payload);
                (j, body)
            })
            .collect();
        self.cur = Some(Current {
            idx,
            m,
            gcd,
            own_test,
            own_mask: masks[self.me],
            own_c: 0,
            floor: None,
            own_delta: None,
            trial_x: None,
            own_partial: Vec::new(),
        });
        self.emit(Phase::Test, pair, Some(bcast))
    }

    pub(super) fn after_test(
        &mut self,
        pairs: &[(usize, &[u8])],
        bcasts: &[(usize, &[u8])],
    ) -> Result<Vec<Message>> {
        let iterations = self.params.iterations;
        let values = self.by_party(bcasts, iterations)?;
        let mut cur = self.cur.take().ok_or(KeygenError::Failed("no candidate"))?;
        for (it, own) in cur.own_test.iter().enumerate() {
            let mut vs = Vec::with_capacity(self.n);
            for (j, theirs) in values.iter().enumerate() {
                vs.push(if j == self.me {
                    own.clone()
                } else {
                    cur.m.zn.decode(theirs[it])?
                });
            }
            if !biprime::accepts(&cur.m, &vs, biprime::carrier(cur.idx, it, self.n)) {
                return self.next_candidate();
            }
        }
        // φ_me + Σᵢ μ_{i→me} mod e (§1.6 step 1).
        let (p, q) = (&self.ps[cur.idx], &self.qs[cur.idx]);
        let mut c = (dexp::phi_mod_e(self.me, &cur.m.n, p, q) + cur.own_mask) % E;
        let mut gcd_in = Vec::with_capacity(pairs.len());
        for (j, body) in pairs {
            let mut r = Reader(body);
            let mask = u32::from_be_bytes(r.take(4)?.try_into().expect("4")) as u64;
            if mask >= E {
                return Err(KeygenError::Malformed("mask not reduced"));
            }
            c = (c + mask) % E;
            gcd_in.push((*j, r.0));
        }
        let z = match cur.gcd.advance(&gcd_in, &mut self.rng)? {
            MulStep::Open(z) => z,
            MulStep::Pairwise(_) => {
                return Err(KeygenError::Failed("gcd multiplier needs a one-round deal"));
            }
        };
        let mut body = (c as u32).to_be_bytes().to_vec();
        body.extend_from_slice(&z);
        cur.own_c = c;
        self.cur = Some(cur);
        self.emit(Phase::Check, Vec::new(), Some(body))
    }

    /// Accept iff gcd(z, N) = 1 and ψ ≠ 0; then floor shares, the trial partial and deltas.
    pub(super) fn after_check(&mut self, bcasts: &[(usize, &[u8])]) -> Result<Vec<Message>> {
        let mut cur = self.cur.take().ok_or(KeygenError::Failed("no candidate"))?;
        let mut psi = cur.own_c;
        let mut z_in = Vec::with_capacity(bcasts.len());
        for (j, body) in bcasts {
            let mut r = Reader(body);
            let c = u32::from_be_bytes(r.take(4)?.try_into().expect("4")) as u64;
            if c >= E {
                return Err(KeygenError::Malformed("masked value not reduced"));
            }
            psi = (psi + c) % E;
            z_in.push((*j, r.0));
        }
        let z = cur.gcd.open(&z_in)?;
        let z = z.first().ok_or(KeygenError::Failed("no gcd output"))?;
        let one = BoxedUint::one_with_precision(cur.m.n.bits_precision());
        if bool::from(z.is_zero()) || z.gcd_vartime(&cur.m.n) != one || psi == 0 {
            return self.next_candidate();
        }
        let (p, q) = (&self.ps[cur.idx], &self.qs[cur.idx]);
        let bits = cur.m.bits;
        let floor = dexp::floor_share(self.me, dexp::zeta(psi), &cur.m.n, p, q, bits);
        // The public trial input: hashed from the session and N, a unit of Z_N.
        let mut ctr = 0u64;
        let x = loop {
            let x = biprime::hash_to_zn(b"trial", &self.params.session, &cur.m, ctr);
            ctr += 1;
            if !bool::from(x.is_zero()) && x.gcd_vartime(&cur.m.n) == one {
                break x;
            }
        };
        let x_bytes = crate::bigint::to_fixed_be(&x, bits.div_ceil(8));
        // The cells' own partial, x^(2dᵢ), on the raw floor share (§1.6 step 4).
        let raw = floor.to_share(bits)?;
        let partial = rsa_partial(&cur.m.to_be(), &x_bytes, &raw).map_err(KeygenError::Core)?;
        let deltas = zero_sum_row(
            &mut self.rng,
            self.me,
            self.n,
            bits + SHARE_HIDING_BITS,
            bits,
        )?;
        let len = (bits + SHARE_HIDING_BITS).div_ceil(8) + 1;
        let mut pair = Vec::with_capacity(self.n - 1);
        for (j, d) in deltas.iter().enumerate() {
            if j != self.me {
                let mut body = Vec::with_capacity(len + 1);
                d.encode(len, &mut body)?;
                pair.push((j, body));
            }
        }
        cur.floor = Some(floor);
        cur.own_delta = deltas.into_iter().nth(self.me);
        cur.trial_x = Some(cur.m.zn.elem(&x));
        cur.own_partial = partial.clone();
        self.cur = Some(cur);
        self.emit(Phase::Trial, pair, Some(partial))
    }

    /// Find r with (x^(2r)·Π sᵢ)^e = x², add r (party 0) and every delta: the final share.
    pub(super) fn after_trial(
        &mut self,
        pairs: &[(usize, &[u8])],
        bcasts: &[(usize, &[u8])],
    ) -> Result<Vec<Message>> {
        let cur = self.cur.take().ok_or(KeygenError::Failed("no candidate"))?;
        let bits = cur.m.bits;
        let zn = &cur.m.zn;
        let x = cur
            .trial_x
            .as_ref()
            .ok_or(KeygenError::Failed("no trial input"))?;
        let mut w = zn.decode_plain(&cur.own_partial)?;
        for (_, body) in bcasts {
            if body.len() != bits.div_ceil(8) {
                return Err(KeygenError::Malformed("partial length"));
            }
            w = w.mul(&zn.decode_plain(body)?);
        }
        let x2 = x.square();
        let e = BoxedUint::from(E).resize_unchecked(64);
        let mut acc = w;
        let mut r = None;
        for cand in 0..self.n as u64 {
            if acc.pow_bounded_exp(&e, 17).retrieve() == x2.retrieve() {
                r = Some(cand);
                break;
            }
            acc = acc.mul(&x2);
        }
        let r = r.ok_or(KeygenError::Failed(
            "trial exponentiation found no correction",
        ))?;
        let width = Signed::width(bits);
        let mut share = cur.floor.ok_or(KeygenError::Failed("no floor share"))?;
        if self.me == 0 {
            let rb = BoxedUint::from(r);
            share = share.add(&Signed::from_parts(
                crypto_bigint::Choice::FALSE,
                &rb,
                width,
            ));
        }
        share = share.add(
            cur.own_delta
                .as_ref()
                .ok_or(KeygenError::Failed("no delta"))?,
        );
        for (_, body) in pairs {
            share = share.add(&Signed::decode(body, width)?);
        }
        let out = GeneratedShare {
            modulus: cur.m.to_be(),
            public_exponent: BoxedUint::from(E).to_be_bytes_trimmed_vartime().into_vec(),
            share: share.to_share(bits)?,
        };
        #[cfg(feature = "test-seeded")]
        {
            let (p, q) = (&self.ps[cur.idx], &self.qs[cur.idx]);
            self.accepted = Some((p.to_be_bytes().into_vec(), q.to_be_bytes().into_vec()));
        }
        self.result = Some(out);
        self.state = State::Done;
        self.wipe();
        Ok(Vec::new())
    }

    /// Drop every secret of the session (each container zeroizes on drop).
    pub(super) fn wipe(&mut self) {
        self.sieve_run = None;
        self.ps = Zeroizing::new(Vec::new());
        self.qs = Zeroizing::new(Vec::new());
        self.mul = None;
        self.chunk.clear();
        self.cur = None;
        for s in self.pair_in.iter_mut().chain(self.bcast_in.iter_mut()) {
            *s = None;
        }
    }
}
