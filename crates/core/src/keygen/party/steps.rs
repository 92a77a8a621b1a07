//! The full test, the checks and the d-share rounds of one accepted candidate
//! (CRYPTO-NOTES §1.5, §1.6, §2.4).

use crypto_bigint::{BoxedUint, Gcd, NonZero, Resize};
use zeroize::Zeroizing;

use crate::rsa_partial::rsa_partial;
use crate::rsa_share::{RsaShare, SHARE_HIDING_BITS};

use super::super::bgw::{Bgw, MulStep, Multiplier};
use super::super::biprime::{self, Modulus};
use super::super::dexp::{self, E};
use super::super::hybrid;
use super::super::msg::{Message, Phase, Reader};
use super::super::rng::{KeygenRng, uniform_mod};
use super::super::{GeneratedShare, KeygenError, Result};
use super::{Current, Expect, Party, State};
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
        let masks = dexp::masks(&mut self.rng, self.n)?;
        let mut gcd = None;
        let mut deal = Vec::new();
        if !self.is_customer() {
            let mut mul = Bgw::new(self.me, self.cells, &m.n)?;
            if self.params.customer_mode {
                mul = mul.additive_only();
            }
            deal = mul.begin(
                std::slice::from_ref(&*r),
                std::slice::from_ref(&*psi),
                &mut self.rng,
            )?;
            gcd = Some(mul);
        }
        let mut pair: Vec<(usize, Vec<u8>)> = (0..self.n)
            .filter(|&j| j != self.me)
            .map(|j| (j, (masks[j] as u32).to_be_bytes().to_vec()))
            .collect();
        for (j, payload) in deal {
            let body = &mut pair
                .iter_mut()
                .find(|(i, _)| *i == j)
                .ok_or(KeygenError::Failed("deal for an unknown party"))?
                .1;
            body.extend_from_slice(&payload);
        }
        if self.is_customer() {
            // The customer's gcd inputs ride on its Test broadcast.
            bcast.extend_from_slice(&hybrid::gcd_inputs(
                hybrid::need(&self.shapes)?,
                hybrid::need_key(&self.customer_key)?,
                &r,
                &psi,
                &mut self.rng,
            )?);
        }
        let customer_mode = self.params.customer_mode;
        self.cur = Some(Current {
            idx,
            m,
            gcd,
            gcd_r: customer_mode.then(|| Zeroizing::new(BoxedUint::clone(&r))),
            gcd_psi: customer_mode.then(|| Zeroizing::new(BoxedUint::clone(&psi))),
            gcd_inputs: Vec::new(),
            z_acc: None,
            psi_acc: 0,
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
        let mut cur = self.cur.take().ok_or(KeygenError::Failed("no candidate"))?;
        // Customer mode: the customer's broadcast carries its gcd inputs after the values.
        let test_len = iterations * self.params.modulus_bits.div_ceil(8);
        let mut plain = Vec::with_capacity(bcasts.len());
        for (j, body) in bcasts {
            if self.params.customer_mode && *j == self.customer_id() {
                let (v, rest) = body
                    .split_at_checked(test_len)
                    .ok_or(KeygenError::Malformed("broadcast length"))?;
                if rest.len() != hybrid::gcd_input_bytes(hybrid::need(&self.shapes)?) {
                    return Err(KeygenError::Malformed("gcd inputs"));
                }
                cur.gcd_inputs = rest.to_vec();
                plain.push((*j, v));
            } else {
                plain.push((*j, *body));
            }
        }
        let values = self.by_party(&plain, iterations)?;
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
        cur.own_c = c;
        let mut body = (c as u32).to_be_bytes().to_vec();
        if self.is_customer() {
            self.cur = Some(cur);
            let cells: Vec<usize> = (0..self.cells).collect();
            let expect = Expect {
                phase: Phase::Check,
                pair_from: cells.clone(),
                bcast_from: cells,
                skip: 0,
            };
            return self.send(Phase::Check, Vec::new(), Some(body), expect);
        }
        let gcd_in: Vec<(usize, &[u8])> =
            gcd_in.into_iter().filter(|(_, b)| !b.is_empty()).collect();
        let gcd = cur
            .gcd
            .as_mut()
            .ok_or(KeygenError::Failed("no gcd product"))?;
        let z = match gcd.advance(&gcd_in, &mut self.rng)? {
            MulStep::Open(z) => z,
            MulStep::Pairwise(_) => {
                return Err(KeygenError::Failed("gcd multiplier needs a one-round deal"));
            }
        };
        if !self.params.customer_mode {
            body.extend_from_slice(&z);
            self.cur = Some(cur);
            return self.emit(Phase::Check, Vec::new(), Some(body));
        }
        // Customer mode: this cell's z share is its BGW share minus its MtA β, and the MtA
        // reply goes to the customer.
        let zn = cur.m.zn.clone();
        let own = gcd.additive_shares();
        let (r, psi) = (
            cur.gcd_r
                .as_ref()
                .ok_or(KeygenError::Failed("no gcd input"))?,
            cur.gcd_psi
                .as_ref()
                .ok_or(KeygenError::Failed("no gcd input"))?,
        );
        let (reply, minus_beta) = hybrid::gcd_reply(
            hybrid::need(&self.shapes)?,
            &zn,
            &cur.gcd_inputs,
            psi,
            r,
            &mut self.pool,
            &mut self.rng,
        )?;
        zn.encode(&own[0].add(&minus_beta), &mut body);
        self.cur = Some(cur);
        let peers: Vec<usize> = (0..self.n).filter(|&j| j != self.me).collect();
        let expect = Expect {
            phase: Phase::Check,
            pair_from: Vec::new(),
            bcast_from: peers,
            skip: 0,
        };
        self.send(
            Phase::Check,
            vec![(self.customer_id(), reply)],
            Some(body),
            expect,
        )
    }

    /// Cells-only: the openings of z and the masked φ values.
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
        let gcd = cur
            .gcd
            .as_mut()
            .ok_or(KeygenError::Failed("no gcd product"))?;
        let z = gcd.open(&z_in)?;
        let z = z
            .first()
            .ok_or(KeygenError::Failed("no gcd output"))?
            .clone();
        self.cur = Some(cur);
        self.decide(z, psi)
    }

    /// Accept iff gcd(z, N) = 1 and ψ ≠ 0; then floor shares, the trial partial and deltas
    /// (customer: its pieces of Δ).
    pub(super) fn decide(&mut self, z: BoxedUint, psi: u64) -> Result<Vec<Message>> {
        let mut cur = self.cur.take().ok_or(KeygenError::Failed("no candidate"))?;
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
        let customer = self.is_customer();
        let pair = if customer {
            self.customer_pieces(&floor, bits)?
        } else {
            let deltas = zero_sum_row(
                &mut self.rng,
                self.me,
                self.cells,
                bits + SHARE_HIDING_BITS,
                bits,
            )?;
            let len = (bits + SHARE_HIDING_BITS).div_ceil(8) + 1;
            let mut pair = Vec::with_capacity(self.cells - 1);
            for (j, d) in deltas.iter().enumerate() {
                if j != self.me {
                    let mut body = Vec::with_capacity(len + 1);
                    d.encode(len, &mut body)?;
                    pair.push((j, body));
                }
            }
            cur.own_delta = deltas.into_iter().nth(self.me);
            pair
        };
        cur.floor = Some(floor);
        cur.trial_x = Some(cur.m.zn.elem(&x));
        cur.own_partial = partial.clone();
        self.cur = Some(cur);
        if customer {
            let cells: Vec<usize> = (0..self.cells).collect();
            let expect = Expect {
                phase: Phase::Trial,
                pair_from: Vec::new(),
                bcast_from: cells,
                skip: 0,
            };
            return self.send(Phase::Trial, pair, Some(partial), expect);
        }
        // Cells wait for every peer's partial and pairwise piece (deltas; the customer's Δ).
        self.emit(Phase::Trial, pair, Some(partial))
    }

    /// Find r with (x^(2r)·Π sᵢ)^e = x², add r (party 0) and every delta: the final share.
    pub(super) fn after_trial(
        &mut self,
        pairs: &[(usize, &[u8])],
        bcasts: &[(usize, &[u8])],
    ) -> Result<Vec<Message>> {
        let cur = self.cur.take().ok_or(KeygenError::Failed("no candidate"))?;
        let r = self.find_correction(&cur, bcasts)?;
        let bits = cur.m.bits;
        let width = Signed::width(bits);
        let mut share = cur
            .floor
            .as_ref()
            .ok_or(KeygenError::Failed("no floor share"))?
            .add(&Signed::from_parts(
                crypto_bigint::Choice::FALSE,
                &BoxedUint::zero_with_precision(width),
                width,
            ));
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
        let share = share.to_share(bits)?;
        self.finish_with(cur, share)
    }

    /// The r in [0, n) with (x^(2r)·Π sᵢ)^e = x² (every party finds the same, publicly).
    pub(super) fn find_correction(&self, cur: &Current, bcasts: &[(usize, &[u8])]) -> Result<u64> {
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
        for cand in 0..self.n as u64 {
            if acc.pow_bounded_exp(&e, 17).retrieve() == x2.retrieve() {
                return Ok(cand);
            }
            acc = acc.mul(&x2);
        }
        Err(KeygenError::Failed(
            "trial exponentiation found no correction",
        ))
    }

    /// End the session with `share` (wiping every other secret).
    pub(super) fn finish_with(&mut self, cur: Current, share: RsaShare) -> Result<Vec<Message>> {
        let out = GeneratedShare {
            modulus: cur.m.to_be(),
            public_exponent: BoxedUint::from(E).to_be_bytes_trimmed_vartime().into_vec(),
            share,
        };
        #[cfg(feature = "test-seeded")]
        {
            let (p, q) = (&self.ps[cur.idx], &self.qs[cur.idx]);
            self.accepted = Some((p.to_be_bytes().into_vec(), q.to_be_bytes().into_vec()));
        }
        drop(cur);
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
        self.customer_key = None;
        self.sieve_inputs = None;
        self.open_shares = Zeroizing::new(Vec::new());
        for s in self.pair_in.iter_mut().chain(self.bcast_in.iter_mut()) {
            *s = None;
        }
    }
}
