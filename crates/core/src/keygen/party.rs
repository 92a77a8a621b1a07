//! One party's state machine: `start`, then `handle` every incoming message until `Done`.
//! The round structure is in the module docs (keygen/mod.rs).

use std::collections::VecDeque;
use std::time::Instant;

use crypto_bigint::BoxedUint;
use zeroize::Zeroizing;

use crate::secret::SecretBytes;

use crate::paillier::{Randomiser, SecretKey};
use crate::rsa_share::RsaShare;

use super::bgw::{Bgw, MulStep, Multiplier};
use super::biprime::{self, Modulus};
use super::hybrid::Shapes;
use super::msg::{Dest, Message, Phase};
use super::primes::{bgw_prime, passes_trial_division};
use super::rng::KeygenRng;
use super::sieve::{SieveParams, SieveRun, SieveStep};
use super::zmod::Elem;
use super::{GeneratedShare, KeygenError, KeygenParams, Result};
use crate::signed::Signed;

/// Received bodies of a round, by sender.
type Inbox = Vec<(usize, SecretBytes)>;

/// What a party wants after a message.
#[derive(Debug)]
pub enum Step {
    /// Messages to deliver (possibly none while the round is still incomplete).
    Send(Vec<Message>),
    /// Generation finished: the public key and this party's share.
    Done(GeneratedShare),
}

/// Public counters, for benchmarks and logs.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub batches: u64,
    pub pairs: u64,
    pub trial_survivors: u64,
    pub filter_tests: u64,
    pub full_tests: u64,
    pub rounds: u64,
    pub pairwise_bytes_sent: u64,
    pub broadcast_bytes_sent: u64,
    /// CPU time of this party by step (ns): sieve conversion, N products (deal, combine,
    /// open), trial division, filter iterations, and everything of the accepted candidate.
    pub sieve_ns: u64,
    pub product_ns: u64,
    pub trial_division_ns: u64,
    pub filter_ns: u64,
    pub finish_ns: u64,
    /// Customer mode, cells: randomisers precomputed in idle time (`Party::precompute`) and
    /// the time spent on them (not in the buckets above).
    pub randomisers: u64,
    pub precompute_ns: u64,
}

fn ns(t: Instant) -> u64 {
    t.elapsed().as_nanos() as u64
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Idle,
    Running,
    Done,
    Failed,
}

/// The candidate under the full test and what the later rounds need.
struct Current {
    idx: usize,
    m: Modulus,
    /// The cells' BGW for r·ψ (None for the customer).
    gcd: Option<Bgw>,
    /// Customer mode: own (r, ψ) of the gcd product, the customer's MtA inputs (cells), and
    /// the running sum of opened z shares (cells, between Check and CheckOpen).
    gcd_r: Option<Zeroizing<BoxedUint>>,
    gcd_psi: Option<Zeroizing<BoxedUint>>,
    gcd_inputs: Vec<u8>,
    z_acc: Option<Elem>,
    psi_acc: u64,
    own_test: Vec<Elem>,
    own_mask: u64,
    own_c: u64,
    floor: Option<Signed>,
    own_delta: Option<Signed>,
    trial_x: Option<Elem>,
    own_partial: Vec<u8>,
}

pub struct Party<R: KeygenRng> {
    me: usize,
    n: usize,
    k: usize,
    params: KeygenParams,
    rng: R,
    sieve: SieveParams,
    prime: BoxedUint,
    state: State,
    round: u32,
    phase: Phase,
    /// What the current round waits for: its phase and, per party, a pairwise message
    /// and/or a broadcast.
    expect_phase: Phase,
    pair_from: Vec<bool>,
    bcast_from: Vec<bool>,
    pair_in: Vec<Option<SecretBytes>>,
    bcast_in: Vec<Option<SecretBytes>>,
    sieve_run: Option<SieveRun>,
    ps: Zeroizing<Vec<BoxedUint>>,
    qs: Zeroizing<Vec<BoxedUint>>,
    mul: Option<Bgw>,
    moduli: Vec<BoxedUint>,
    survivors: VecDeque<usize>,
    /// The filter chunk in flight: (candidate, its modulus, own value).
    chunk: Vec<(usize, Modulus, Elem)>,
    passed: VecDeque<usize>,
    cur: Option<Current>,
    stats: Stats,
    result: Option<GeneratedShare>,
    /// Cells in the session (all parties in cells-only mode).
    cells: usize,
    /// Customer mode, customer: its Paillier key (made at start) and long-term share c.
    customer_key: Option<SecretKey>,
    customer_share: Option<RsaShare>,
    /// Customer mode: the product shapes under the customer's key.
    shapes: Option<Shapes>,
    /// Customer mode, cell: the customer's sieve inputs for the batch.
    sieve_inputs: Option<SecretBytes>,
    /// Customer mode: this party's additive opening shares of the batch's N (mod P).
    open_shares: Zeroizing<Vec<Elem>>,
    /// Customer mode, cell: precomputed encryption randomisers under the customer's key.
    pool: Vec<Randomiser>,
    #[cfg(feature = "test-seeded")]
    accepted: Option<(Vec<u8>, Vec<u8>)>,
}

impl<R: KeygenRng> std::fmt::Debug for Party<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Party")
            .field("me", &self.me)
            .field("n", &self.n)
            .field("round", &self.round)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl<R: KeygenRng> Party<R> {
    /// Party `id` (0-based; party 0 plays "party 1" of the papers) of `n`. In customer mode
    /// this makes a cell (id < n − 1); the customer is `new_customer`.
    pub fn new(id: usize, n: usize, params: KeygenParams, rng: R) -> Result<Self> {
        params.validate(n)?;
        if id >= params.cells(n) {
            return Err(KeygenError::Params("party id out of range"));
        }
        Self::build(id, n, params, rng)
    }

    /// Customer mode: the customer, party n − 1, whose long-term share of this key is `c`
    /// (`CustomerSeed::rsa_share`). It ends holding exactly c: it deals Δ = d_customer − c to
    /// the cells and forgets d_customer.
    pub fn new_customer(n: usize, params: KeygenParams, rng: R, c: RsaShare) -> Result<Self> {
        params.validate(n)?;
        if !params.customer_mode {
            return Err(KeygenError::Params("not a customer-mode session"));
        }
        if !crate::rsa_share::magnitude_fits(c.magnitude.expose(), params.modulus_bits) {
            return Err(KeygenError::Params("customer share of the wrong width"));
        }
        let mut p = Self::build(n - 1, n, params, rng)?;
        p.customer_share = Some(c);
        Ok(p)
    }

    fn build(id: usize, n: usize, params: KeygenParams, rng: R) -> Result<Self> {
        let k = params.modulus_bits / 2;
        let log_n = usize::BITS - (n - 1).leading_zeros();
        let prime = bgw_prime((2 * k + 2 * log_n as usize + 1) as u32);
        let cells = params.cells(n);
        Ok(Party {
            me: id,
            n,
            k,
            sieve: SieveParams::new(k, n)?,
            prime,
            params,
            rng,
            state: State::Idle,
            round: 0,
            phase: Phase::SieveDeal,
            expect_phase: Phase::SieveDeal,
            pair_from: vec![false; n],
            bcast_from: vec![false; n],
            pair_in: vec![None; n],
            bcast_in: vec![None; n],
            sieve_run: None,
            ps: Zeroizing::new(Vec::new()),
            qs: Zeroizing::new(Vec::new()),
            mul: None,
            moduli: Vec::new(),
            survivors: VecDeque::new(),
            chunk: Vec::new(),
            passed: VecDeque::new(),
            cur: None,
            stats: Stats::default(),
            result: None,
            cells,
            customer_key: None,
            customer_share: None,
            shapes: None,
            sieve_inputs: None,
            open_shares: Zeroizing::new(Vec::new()),
            pool: Vec::new(),
            #[cfg(feature = "test-seeded")]
            accepted: None,
        })
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The round this party waits for: every message it accepts next carries it.
    pub fn round(&self) -> u32 {
        self.round
    }

    /// Test only: this party's additive shares (pᵢ, qᵢ) of the accepted primes, big-endian.
    #[cfg(feature = "test-seeded")]
    pub fn test_prime_shares(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        self.accepted.clone()
    }

    /// The first round's messages.
    pub fn start(&mut self) -> Result<Vec<Message>> {
        if self.state != State::Idle {
            return Err(KeygenError::NotRunning);
        }
        self.state = State::Running;
        self.guard(|p| {
            if p.is_customer() {
                p.customer_setup()?;
            }
            p.new_batch()
        })
    }

    /// Take one message. Refused messages (wrong session, sender, destination, round, phase,
    /// duplicates) return an error and leave the session running; any later failure aborts it.
    pub fn handle(&mut self, msg: Message) -> Result<Step> {
        if self.state != State::Running {
            return Err(KeygenError::NotRunning);
        }
        if msg.session != self.params.session {
            return Err(KeygenError::WrongSession);
        }
        let from = msg.sender as usize;
        if from >= self.n || from == self.me {
            return Err(KeygenError::UnknownSender(msg.sender));
        }
        if msg.round != self.round {
            return Err(KeygenError::WrongRound {
                expected: self.round,
                got: msg.round,
            });
        }
        if msg.phase != self.expect_phase {
            return Err(KeygenError::WrongPhase);
        }
        let slot = match msg.dest {
            Dest::To(j) if j as usize == self.me && self.pair_from[from] => &mut self.pair_in[from],
            Dest::Broadcast if self.bcast_from[from] => &mut self.bcast_in[from],
            Dest::To(j) if j as usize != self.me => return Err(KeygenError::NotForMe),
            _ => return Err(KeygenError::WrongPhase),
        };
        if slot.is_some() {
            return Err(KeygenError::Duplicate(msg.sender));
        }
        *slot = Some(msg.body);
        let complete = (0..self.n).all(|j| {
            (!self.pair_from[j] || self.pair_in[j].is_some())
                && (!self.bcast_from[j] || self.bcast_in[j].is_some())
        });
        if !complete {
            return Ok(Step::Send(Vec::new()));
        }
        let (pairs, bcasts) = self.take_inbox();
        self.round += 1;
        self.stats.rounds += 1;
        let res = self.guard(|p| p.complete(&pairs, &bcasts));
        let out = res?;
        match self.result.take() {
            Some(share) => Ok(Step::Done(share)),
            None => Ok(Step::Send(out)),
        }
    }

    fn guard<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let r = f(self);
        if r.is_err() {
            self.state = State::Failed;
            self.wipe();
        }
        r
    }

    fn take_inbox(&mut self) -> (Inbox, Inbox) {
        let take = |v: &mut Vec<Option<SecretBytes>>| {
            v.iter_mut()
                .enumerate()
                .filter_map(|(j, s)| s.take().map(|b| (j, b)))
                .collect::<Vec<_>>()
        };
        (take(&mut self.pair_in), take(&mut self.bcast_in))
    }

    /// Build this round's outgoing messages and expect the same kinds back from every peer.
    fn emit(
        &mut self,
        phase: Phase,
        pair: Vec<(usize, Vec<u8>)>,
        bcast: Option<Vec<u8>>,
    ) -> Result<Vec<Message>> {
        let peers: Vec<usize> = (0..self.n).filter(|&j| j != self.me).collect();
        let expect = Expect {
            phase,
            pair_from: if pair.is_empty() {
                Vec::new()
            } else {
                peers.clone()
            },
            bcast_from: if bcast.is_some() { peers } else { Vec::new() },
            skip: 0,
        };
        self.send(phase, pair, bcast, expect)
    }

    /// Build this round's outgoing messages; then wait for `expect` (`skip` rounds later).
    fn send(
        &mut self,
        phase: Phase,
        pair: Vec<(usize, Vec<u8>)>,
        bcast: Option<Vec<u8>>,
        expect: Expect,
    ) -> Result<Vec<Message>> {
        self.phase = phase;
        self.expect_phase = expect.phase;
        self.pair_from = (0..self.n).map(|j| expect.pair_from.contains(&j)).collect();
        self.bcast_from = (0..self.n)
            .map(|j| expect.bcast_from.contains(&j))
            .collect();
        let mut out = Vec::with_capacity(pair.len() + 1);
        for (j, body) in pair {
            self.stats.pairwise_bytes_sent += body.len() as u64;
            out.push(self.message(Dest::To(j as u16), body));
        }
        if let Some(body) = bcast {
            self.stats.broadcast_bytes_sent += body.len() as u64;
            out.push(self.message(Dest::Broadcast, body));
        }
        self.round += expect.skip;
        Ok(out)
    }

    fn message(&self, dest: Dest, body: Vec<u8>) -> Message {
        Message {
            session: self.params.session,
            sender: self.me as u16,
            dest,
            phase: self.phase,
            round: self.round,
            body: SecretBytes::new(body),
        }
    }

    fn complete(
        &mut self,
        pairs: &[(usize, SecretBytes)],
        bcasts: &[(usize, SecretBytes)],
    ) -> Result<Vec<Message>> {
        let pairs: Vec<(usize, &[u8])> = pairs.iter().map(|(j, b)| (*j, b.expose())).collect();
        let bcasts: Vec<(usize, &[u8])> = bcasts.iter().map(|(j, b)| (*j, b.expose())).collect();
        if self.params.customer_mode
            && let Some(out) = self.complete_hybrid(&pairs, &bcasts)?
        {
            return Ok(out);
        }
        match self.expect_phase {
            Phase::SieveDeal | Phase::SieveReshare => {
                let mut run = self
                    .sieve_run
                    .take()
                    .ok_or(KeygenError::Failed("no sieve"))?;
                let t = Instant::now();
                let step = if self.phase == Phase::SieveDeal {
                    run.after_deal(&self.sieve, &pairs, &mut self.rng)?
                } else {
                    run.after_reshare(&self.sieve, &pairs, &mut self.rng)?
                };
                self.stats.sieve_ns += ns(t);
                match step {
                    SieveStep::Send(out) => {
                        self.sieve_run = Some(run);
                        self.emit(Phase::SieveReshare, out, None)
                    }
                    SieveStep::Shares(_) => Err(KeygenError::Failed("sieve stopped early")),
                    SieveStep::Done(mut cands) => {
                        let qs = cands.split_off(self.params.batch);
                        self.ps = cands;
                        self.qs = Zeroizing::new(qs);
                        let t = Instant::now();
                        let mut mul = Bgw::new(self.me, self.n, &self.prime)?;
                        let out = mul.begin(&self.ps, &self.qs, &mut self.rng)?;
                        self.stats.product_ns += ns(t);
                        self.mul = Some(mul);
                        self.emit(Phase::Product, out, None)
                    }
                }
            }
            Phase::Product => {
                let mul = self.mul.as_mut().ok_or(KeygenError::Failed("no product"))?;
                let t = Instant::now();
                let step = mul.advance(&pairs, &mut self.rng)?;
                self.stats.product_ns += ns(t);
                match step {
                    MulStep::Pairwise(out) => self.emit(Phase::Product, out, None),
                    MulStep::Open(body) => self.emit(Phase::Open, Vec::new(), Some(body)),
                }
            }
            Phase::Open => {
                let mut mul = self.mul.take().ok_or(KeygenError::Failed("no product"))?;
                let t = Instant::now();
                self.moduli = mul.open(&bcasts)?;
                self.stats.product_ns += ns(t);
                self.after_moduli()
            }
            Phase::Filter => {
                let t = Instant::now();
                let chunk = std::mem::take(&mut self.chunk);
                let values = self.by_party(&bcasts, chunk.len())?;
                for (c, (idx, m, own)) in chunk.into_iter().enumerate() {
                    let mut vs = Vec::with_capacity(self.n);
                    for (j, theirs) in values.iter().enumerate() {
                        vs.push(if j == self.me {
                            own.clone()
                        } else {
                            m.zn.decode(theirs[c])?
                        });
                    }
                    if biprime::accepts(&m, &vs, biprime::carrier(idx, 0, self.n)) {
                        self.passed.push_back(idx);
                    }
                }
                self.stats.filter_ns += ns(t);
                self.next_candidate()
            }
            Phase::Test => self.timed(|p| p.after_test(&pairs, &bcasts)),
            Phase::Check => self.timed(|p| p.after_check(&bcasts)),
            Phase::Trial => self.timed(|p| p.after_trial(&pairs, &bcasts)),
            // Customer-mode phases are handled above.
            _ => Err(KeygenError::WrongPhase),
        }
    }
}

/// What a party waits for after sending: messages of `phase`, pairwise from `pair_from` and
/// broadcast by `bcast_from`, `skip` rounds after the one it sent in (customer mode: a round
/// in which only other parties talk).
pub(super) struct Expect {
    pub(super) phase: Phase,
    pub(super) pair_from: Vec<usize>,
    pub(super) bcast_from: Vec<usize>,
    pub(super) skip: u32,
}

impl<R: KeygenRng> Party<R> {
    /// Public trial division of the batch's moduli, then the first filter chunk.
    pub(super) fn after_moduli(&mut self) -> Result<Vec<Message>> {
        let t = Instant::now();
        self.survivors.clear();
        for (i, n) in self.moduli.iter().enumerate() {
            // Exact length always holds by construction (sieve.rs); check anyway.
            if n.bit_width_vartime() as usize == self.params.modulus_bits
                && passes_trial_division(n)
            {
                self.survivors.push_back(i);
            }
        }
        self.stats.trial_division_ns += ns(t);
        self.stats.trial_survivors += self.survivors.len() as u64;
        self.next_filter()
    }
}

mod batch;
mod hybrid;
mod steps;
