//! Customer mode: the rounds that differ from the cells-only protocol (sieve, N, the gcd's
//! opening, the Δ dealing). The customer is party n − 1; `hybrid.rs` has the products.
//!
//! Rounds of one batch (R = its first round, m cells; "→C" pairwise to the customer):
//!
//! | round | cells send | customer sends | cells wait for | customer waits for |
//! |---|---|---|---|---|
//! | R | sieve deal (pairwise) | pk, Enc(a_C) (broadcast) | deals, C's broadcast | — |
//! | R+1..R+m−2 | reshares | — | reshares | — |
//! | R+m−1 | sieve replies →C, N deal (pairwise) | — | N deals | sieve replies |
//! | R+m | — | Enc(p_C), Enc(q_C) (broadcast) | C's inputs | — |
//! | R+m+1 | N replies →C, opening shares (broadcast) | — | cells' openings | replies, openings |
//! | R+m+2 | — | its opening share (broadcast) | C's opening | — |
//!
//! then the filter rounds as in cells-only mode. For the accepted candidate the Test round
//! carries the customer's gcd inputs in its broadcast; Check adds the cells' gcd replies →C
//! and a CheckOpen round for the customer's opening of z; in Trial the customer deals its
//! pieces of Δ instead of refresh deltas.

use std::time::Instant;

use crypto_bigint::BoxedUint;
use zeroize::Zeroizing;

use crate::paillier::{PublicKey, SecretKey};

use super::super::bgw::{Bgw, MulStep, Multiplier};
use super::super::dexp;
use super::super::hybrid::{self, Shapes};
use super::super::msg::{Message, Phase};
use super::super::rng::KeygenRng;
use super::super::sieve::{SieveRun, SieveStep};
use super::super::zmod::{Elem, Zmod};
use super::super::{KeygenError, Result};
use super::{Expect, Party, ns};
use crate::signed::{Signed, zero_sum_row};

impl<R: KeygenRng> Party<R> {
    pub(super) fn is_customer(&self) -> bool {
        self.params.customer_mode && self.me == self.n - 1
    }

    pub(super) fn customer_id(&self) -> usize {
        self.n - 1
    }

    fn cell_ids(&self) -> Vec<usize> {
        (0..self.cells).collect()
    }

    fn other_cells(&self) -> Vec<usize> {
        (0..self.cells).filter(|&j| j != self.me).collect()
    }

    fn expect(&self, phase: Phase, pair: Vec<usize>, bcast: Vec<usize>, skip: u32) -> Expect {
        Expect {
            phase,
            pair_from: pair,
            bcast_from: bcast,
            skip,
        }
    }

    /// Customer: its Paillier key, made once per session from its (fresh) randomness.
    pub(super) fn customer_setup(&mut self) -> Result<()> {
        let t = Instant::now();
        let sk = SecretKey::generate(self.params.paillier_bits, &mut self.rng)?;
        let m_bits = self.sieve.zm.modulus().bit_width_vartime() as usize;
        self.shapes = Some(Shapes::new(sk.public(), self.k, m_bits, self.cells)?);
        self.customer_key = Some(sk);
        self.stats.sieve_ns += ns(t);
        Ok(())
    }

    /// A new batch in customer mode (cells: the cells-only sieve deal, stopping at additive
    /// shares; customer: its factors, encrypted).
    pub(super) fn new_batch_hybrid(&mut self) -> Result<Vec<Message>> {
        let count = 2 * self.params.batch;
        let t = Instant::now();
        if self.is_customer() {
            let mut a = Zeroizing::new(Vec::with_capacity(count));
            for _ in 0..count {
                a.push(self.sieve.unit(&mut self.rng)?);
            }
            let sh = hybrid::need(&self.shapes)?;
            let mut body = sh.pk.to_be();
            let sk = hybrid::need_key(&self.customer_key)?;
            body.extend_from_slice(&hybrid::sieve_inputs(sh, sk, &a, &mut self.rng)?);
            // a_C itself is not needed again: the customer's share is Σ αᵢ.
            drop(a);
            self.stats.sieve_ns += ns(t);
            let expect = self.expect(
                Phase::SieveReply,
                self.cell_ids(),
                Vec::new(),
                (self.cells - 1) as u32,
            );
            return self.send(Phase::SieveDeal, Vec::new(), Some(body), expect);
        }
        let (run, out) = SieveRun::deal(&self.sieve, self.me, self.cells, count, &mut self.rng)?;
        self.stats.sieve_ns += ns(t);
        self.sieve_run = Some(run.shares_only());
        let expect = self.expect(
            Phase::SieveDeal,
            self.other_cells(),
            vec![self.customer_id()],
            0,
        );
        self.send(Phase::SieveDeal, out, None, expect)
    }

    /// Idle work for a customer-mode cell: precompute up to `max` encryption randomisers under
    /// the customer's current key (they depend on nothing else), so that its MtA replies cost
    /// only their exponentiations. Call it between messages, e.g. while the customer works.
    /// Returns how many are ready; 0 before the customer's key is known, for the customer and
    /// in cells-only mode.
    pub fn precompute(&mut self, max: usize) -> Result<usize> {
        if !self.params.customer_mode || self.is_customer() || self.state != super::State::Running {
            return Ok(0);
        }
        let Some(sh) = self.shapes.as_ref() else {
            return Ok(0);
        };
        let t = Instant::now();
        while self.pool.len() < max {
            self.pool.push(sh.pk.randomiser(&mut self.rng)?);
            self.stats.randomisers += 1;
        }
        self.stats.precompute_ns += ns(t);
        Ok(self.pool.len())
    }

    /// Customer-mode rounds; `None` hands the round to the shared code (filter, Test).
    pub(super) fn complete_hybrid(
        &mut self,
        pairs: &[(usize, &[u8])],
        bcasts: &[(usize, &[u8])],
    ) -> Result<Option<Vec<Message>>> {
        let customer = self.is_customer();
        let out = match (self.expect_phase, customer) {
            (Phase::SieveDeal | Phase::SieveReshare, false) => self.cell_sieve(pairs, bcasts)?,
            (Phase::SieveReply, true) => self.customer_sieve_done(pairs)?,
            (Phase::SieveReply, false) => {
                let mul = self.mul.as_mut().ok_or(KeygenError::Failed("no product"))?;
                let t = Instant::now();
                match mul.advance(pairs, &mut self.rng)? {
                    MulStep::Open(_) => {}
                    MulStep::Pairwise(_) => {
                        return Err(KeygenError::Failed("N product needs a one-round deal"));
                    }
                }
                self.open_shares = mul.additive_shares();
                self.stats.product_ns += ns(t);
                let expect =
                    self.expect(Phase::ProductInput, Vec::new(), vec![self.customer_id()], 0);
                self.send(Phase::ProductInput, Vec::new(), None, expect)?
            }
            (Phase::ProductInput, false) => self.cell_product_reply(bcasts)?,
            (Phase::ProductReply, false) => {
                let t = Instant::now();
                self.add_openings(bcasts)?;
                self.stats.product_ns += ns(t);
                let expect = self.expect(Phase::Open, Vec::new(), vec![self.customer_id()], 0);
                self.send(Phase::Open, Vec::new(), None, expect)?
            }
            (Phase::ProductReply, true) => self.customer_open(pairs, bcasts)?,
            (Phase::Open, false) => {
                let t = Instant::now();
                self.add_openings(bcasts)?;
                self.moduli = self.open_shares.iter().map(|v| v.retrieve()).collect();
                self.open_shares = Zeroizing::new(Vec::new());
                self.stats.product_ns += ns(t);
                self.after_moduli()?
            }
            (Phase::Check, _) => self.timed(|p| p.after_check_hybrid(pairs, bcasts))?,
            (Phase::CheckOpen, false) => self.timed(|p| p.cell_check_open(bcasts))?,
            (Phase::Trial, true) => self.timed(|p| p.customer_trial(bcasts))?,
            _ => return Ok(None),
        };
        Ok(Some(out))
    }

    /// Cells: the BGW sieve conversion among the cells, then the MtA with the customer's
    /// factor and the cells' BGW deal for N.
    fn cell_sieve(
        &mut self,
        pairs: &[(usize, &[u8])],
        bcasts: &[(usize, &[u8])],
    ) -> Result<Vec<Message>> {
        let mut run = self
            .sieve_run
            .take()
            .ok_or(KeygenError::Failed("no sieve"))?;
        let t = Instant::now();
        let step = if self.expect_phase == Phase::SieveDeal {
            // The customer's broadcast: its Paillier key, then Enc(a_C) per value.
            let body = bcasts
                .iter()
                .find(|(j, _)| *j == self.customer_id())
                .map(|(_, b)| *b)
                .ok_or(KeygenError::Failed("no customer inputs"))?;
            let pk_len = self.params.paillier_bits / 8;
            if body.len() < pk_len {
                return Err(KeygenError::Malformed("customer inputs"));
            }
            let pk = PublicKey::from_be(&body[..pk_len])?;
            if pk.bits() != self.params.paillier_bits {
                return Err(KeygenError::Malformed("customer key size"));
            }
            let m_bits = self.sieve.zm.modulus().bit_width_vartime() as usize;
            if self.shapes.as_ref().map(|sh| sh.pk.to_be()) != Some(pk.to_be()) {
                // Precomputed randomisers belong to the previous key.
                self.pool.clear();
            }
            self.shapes = Some(Shapes::new(&pk, self.k, m_bits, self.cells)?);
            self.sieve_inputs = Some(crate::secret::SecretBytes::new(body[pk_len..].to_vec()));
            run.after_deal(&self.sieve, pairs, &mut self.rng)?
        } else {
            run.after_reshare(&self.sieve, pairs, &mut self.rng)?
        };
        let b = match step {
            SieveStep::Send(out) => {
                self.stats.sieve_ns += ns(t);
                self.sieve_run = Some(run);
                let expect = self.expect(Phase::SieveReshare, self.other_cells(), Vec::new(), 0);
                return self.send(Phase::SieveReshare, out, None, expect);
            }
            SieveStep::Shares(b) => b,
            SieveStep::Done(_) => return Err(KeygenError::Failed("sieve made candidates")),
        };
        let inputs = self
            .sieve_inputs
            .take()
            .ok_or(KeygenError::Failed("no customer inputs"))?;
        let (reply, own) = hybrid::sieve_reply(
            hybrid::need(&self.shapes)?,
            &self.sieve.zm,
            inputs.expose(),
            &b,
            &mut self.pool,
            &mut self.rng,
        )?;
        self.stats.sieve_ns += ns(t);
        let mut out = self.begin_product(&own)?;
        out.push((self.customer_id(), reply));
        let expect = self.expect(Phase::SieveReply, self.other_cells(), Vec::new(), 0);
        self.send(Phase::SieveReply, out, None, expect)
    }

    /// Candidates from additive sieve shares; cells also deal their BGW sharing of N.
    fn begin_product(&mut self, shares: &[Elem]) -> Result<Vec<(usize, Vec<u8>)>> {
        let t = Instant::now();
        let mut cands = Zeroizing::new(Vec::with_capacity(shares.len()));
        for v in shares {
            cands.push(self.sieve.candidate(self.me, v, &mut self.rng)?);
        }
        let qs = cands.split_off(self.params.batch);
        self.ps = cands;
        self.qs = Zeroizing::new(qs);
        self.stats.sieve_ns += ns(t);
        if self.is_customer() {
            return Ok(Vec::new());
        }
        let t = Instant::now();
        let mut mul = Bgw::new(self.me, self.cells, &self.prime)?.additive_only();
        let out = mul.begin(&self.ps, &self.qs, &mut self.rng)?;
        self.mul = Some(mul);
        self.stats.product_ns += ns(t);
        Ok(out)
    }

    /// Customer: its sieve shares Σ αᵢ, its candidates, and Enc(p_C), Enc(q_C).
    fn customer_sieve_done(&mut self, pairs: &[(usize, &[u8])]) -> Result<Vec<Message>> {
        let t = Instant::now();
        let sk = self
            .customer_key
            .as_ref()
            .ok_or(KeygenError::Failed("no customer key"))?;
        let own = hybrid::sieve_finish(
            hybrid::need(&self.shapes)?,
            sk,
            &self.sieve.zm,
            pairs,
            2 * self.params.batch,
        )?;
        self.stats.sieve_ns += ns(t);
        self.begin_product(&own)?;
        let t = Instant::now();
        let body = hybrid::product_inputs(
            hybrid::need(&self.shapes)?,
            hybrid::need_key(&self.customer_key)?,
            &self.ps,
            &self.qs,
            &mut self.rng,
        )?;
        self.stats.product_ns += ns(t);
        let cells = self.cell_ids();
        let expect = self.expect(Phase::ProductReply, cells.clone(), cells, 1);
        self.send(Phase::ProductInput, Vec::new(), Some(body), expect)
    }

    /// Cells: the N replies to the customer and the opening share λᵢ·c(i) − βᵢ (mod P).
    fn cell_product_reply(&mut self, bcasts: &[(usize, &[u8])]) -> Result<Vec<Message>> {
        let t = Instant::now();
        let inputs = bcasts
            .first()
            .map(|(_, b)| *b)
            .ok_or(KeygenError::Failed("no customer inputs"))?;
        let zp = Zmod::new(&self.prime)?;
        let (reply, own) = hybrid::product_reply(
            hybrid::need(&self.shapes)?,
            &zp,
            inputs,
            &self.ps,
            &self.qs,
            &mut self.pool,
            &mut self.rng,
        )?;
        if own.len() != self.open_shares.len() {
            return Err(KeygenError::Failed("product sizes differ"));
        }
        let mut body = Vec::with_capacity(own.len() * zp.bytes);
        for (s, b) in self.open_shares.iter_mut().zip(own.iter()) {
            *s = s.add(b);
            zp.encode(s, &mut body);
        }
        self.stats.product_ns += ns(t);
        let expect = self.expect(Phase::ProductReply, Vec::new(), self.other_cells(), 0);
        self.send(
            Phase::ProductReply,
            vec![(self.customer_id(), reply)],
            Some(body),
            expect,
        )
    }

    /// Add the broadcast opening shares to the running sums (mod P).
    fn add_openings(&mut self, bcasts: &[(usize, &[u8])]) -> Result<()> {
        let zp = Zmod::new(&self.prime)?;
        for (_, body) in bcasts {
            if body.len() != self.open_shares.len() * zp.bytes {
                return Err(KeygenError::Malformed("opening length"));
            }
            for (s, v) in self.open_shares.iter_mut().zip(body.chunks_exact(zp.bytes)) {
                *s = s.add(&zp.decode(v)?);
            }
        }
        Ok(())
    }

    /// Customer: its opening share p_C·q_C + Σ αᵢ, broadcast; then N and the filter.
    fn customer_open(
        &mut self,
        pairs: &[(usize, &[u8])],
        bcasts: &[(usize, &[u8])],
    ) -> Result<Vec<Message>> {
        let t = Instant::now();
        let zp = Zmod::new(&self.prime)?;
        let sk = self
            .customer_key
            .as_ref()
            .ok_or(KeygenError::Failed("no customer key"))?;
        let own = hybrid::product_finish(
            hybrid::need(&self.shapes)?,
            sk,
            &zp,
            pairs,
            &self.ps,
            &self.qs,
        )?;
        let mut body = Vec::with_capacity(own.len() * zp.bytes);
        for v in own.iter() {
            zp.encode(v, &mut body);
        }
        self.open_shares = own;
        self.add_openings(bcasts)?;
        self.moduli = self.open_shares.iter().map(|v| v.retrieve()).collect();
        self.open_shares = Zeroizing::new(Vec::new());
        self.stats.product_ns += ns(t);
        let expect = self.expect(Phase::Open, Vec::new(), Vec::new(), 0);
        let mut out = self.send(Phase::Open, Vec::new(), Some(body), expect)?;
        // Nothing to wait for: the filter round follows at once.
        self.round += 1;
        out.extend(self.after_moduli()?);
        Ok(out)
    }

    /// Check in customer mode: masked φ values and z shares. Cells add the cells' z shares and
    /// wait for the customer's; the customer finishes its MtA, opens its share and decides.
    fn after_check_hybrid(
        &mut self,
        pairs: &[(usize, &[u8])],
        bcasts: &[(usize, &[u8])],
    ) -> Result<Vec<Message>> {
        let mut cur = self.cur.take().ok_or(KeygenError::Failed("no candidate"))?;
        let zn = cur.m.zn.clone();
        let mut psi = cur.own_c;
        let mut z = cur.z_acc.take().unwrap_or_else(|| zn.zero());
        for (j, body) in bcasts {
            let (c, rest) = body
                .split_at_checked(4)
                .ok_or(KeygenError::Malformed("check"))?;
            let c = u32::from_be_bytes(c.try_into().expect("4")) as u64;
            if c >= dexp::E {
                return Err(KeygenError::Malformed("masked value not reduced"));
            }
            psi = (psi + c) % dexp::E;
            let want = if *j == self.customer_id() {
                0
            } else {
                zn.bytes
            };
            if rest.len() != want {
                return Err(KeygenError::Malformed("check length"));
            }
            if want > 0 {
                z = z.add(&zn.decode(rest)?);
            }
        }
        if !self.is_customer() {
            cur.z_acc = Some(z);
            cur.psi_acc = psi;
            self.cur = Some(cur);
            let expect = self.expect(Phase::CheckOpen, Vec::new(), vec![self.customer_id()], 0);
            return self.send(Phase::CheckOpen, Vec::new(), None, expect);
        }
        let sk = self
            .customer_key
            .as_ref()
            .ok_or(KeygenError::Failed("no customer key"))?;
        let (r, p) = (
            cur.gcd_r
                .as_ref()
                .ok_or(KeygenError::Failed("no gcd input"))?,
            cur.gcd_psi
                .as_ref()
                .ok_or(KeygenError::Failed("no gcd input"))?,
        );
        let own = hybrid::gcd_finish(hybrid::need(&self.shapes)?, sk, &zn, pairs, r, p)?;
        let mut body = Vec::with_capacity(zn.bytes);
        zn.encode(&own, &mut body);
        let z = z.add(&own).retrieve();
        self.cur = Some(cur);
        let expect = self.expect(Phase::CheckOpen, Vec::new(), Vec::new(), 0);
        let mut out = self.send(Phase::CheckOpen, Vec::new(), Some(body), expect)?;
        self.round += 1;
        out.extend(self.decide(z, psi)?);
        Ok(out)
    }

    /// Cells: the customer's z share completes z.
    fn cell_check_open(&mut self, bcasts: &[(usize, &[u8])]) -> Result<Vec<Message>> {
        let mut cur = self.cur.take().ok_or(KeygenError::Failed("no candidate"))?;
        let body = bcasts
            .first()
            .map(|(_, b)| *b)
            .ok_or(KeygenError::Failed("no customer opening"))?;
        let z = cur
            .z_acc
            .take()
            .ok_or(KeygenError::Failed("no z shares"))?
            .add(&cur.m.zn.decode(body)?)
            .retrieve();
        let psi = cur.psi_acc;
        self.cur = Some(cur);
        self.decide(z, psi)
    }

    /// Customer: its pieces of Δ = d_customer − c for the cells (random, full width,
    /// summing to Δ), dealt with its trial partial; it keeps c.
    pub(super) fn customer_pieces(
        &mut self,
        floor: &Signed,
        bits: usize,
    ) -> Result<Vec<(usize, Vec<u8>)>> {
        let c = self
            .customer_share
            .as_ref()
            .ok_or(KeygenError::Failed("no customer share"))?;
        let w = Signed::width(bits);
        let mag = Zeroizing::new(
            BoxedUint::from_be_slice(c.magnitude.expose(), w)
                .map_err(|_| KeygenError::Params("customer share too wide"))?,
        );
        let c = Signed::from_parts(
            crypto_bigint::Choice::from_u8_lsb(c.negative as u8),
            &mag,
            w,
        );
        let delta = floor.add(&c.neg());
        let hiding = bits + crate::rsa_share::SHARE_HIDING_BITS;
        // A zero-sum row over the cells and the customer's own slot; the customer's slot
        // (minus the others' sum) moves into cell 0's piece together with Δ.
        let row = zero_sum_row(&mut self.rng, self.cells, self.cells + 1, hiding, bits)?;
        let len = hiding.div_ceil(8) + 1;
        let mut out = Vec::with_capacity(self.cells);
        for (j, d) in row.iter().take(self.cells).enumerate() {
            let mut body = Vec::with_capacity(len + 1);
            if j == 0 {
                d.add(&delta).add(&row[self.cells]).encode(len, &mut body)?;
            } else {
                d.encode(len, &mut body)?;
            }
            out.push((j, body));
        }
        Ok(out)
    }

    /// Customer: check that the trial partials combine (the key works), then end with c.
    fn customer_trial(&mut self, bcasts: &[(usize, &[u8])]) -> Result<Vec<Message>> {
        let cur = self.cur.take().ok_or(KeygenError::Failed("no candidate"))?;
        self.find_correction(&cur, bcasts)?;
        let share = self
            .customer_share
            .clone()
            .ok_or(KeygenError::Failed("no customer share"))?;
        self.finish_with(cur, share)
    }
}
