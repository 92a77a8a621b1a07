//! One party of a generation behind the sealed relay (DESIGN.md "Sealed relay"): a `Party`
//! whose messages leave sealed (pairwise) or signed (broadcast) and arrive only after they
//! opened, from a peer of this session, under the round the party waits for, past the
//! `ReplayGuard`. A cell runs one per session; so does the customer in customer mode.
//!
//! Routing is by waves: every envelope produced in wave w is delivered, grouped by receiver,
//! in wave w + 1; only parties with a non-empty inbox are stepped. In customer mode a party may
//! send nothing in a round (it completed the round and waits `skip` rounds), so a step may
//! answer an empty batch — but only if the party advanced; a party that neither sent nor
//! advanced was handed an incomplete round. The customer sometimes has nothing to wait for
//! after its opening broadcast and emits the next round's messages in the same step (round w
//! and w + 1 at once); a receiver holds such an envelope of its next round, unopened, until its
//! next step, so the relay stays a plain wave router.
//!
//! The transcript absorbs each round's broadcasts (everyone's, its own included) in round
//! order, sorted by sender. A round is absorbed once its messages have been delivered: when a
//! batch of that round or a later one arrives, or at Done. A party that only sent in a round
//! (and so was not stepped in the next wave) absorbs it later, in its place, so every party's
//! hash is the same whoever talked when.
//!
//! Any refusal fails the run for good: a relay that tampers, replays or reorders is not worth
//! continuing with. Drop the `RelayedParty` after an error (that drops the party's secrets).

use std::collections::BTreeMap;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::{Dest, GeneratedShare, KeygenRng, Message, Party, Stats, Step};
use crate::relay::{
    Context, Envelope, Kind, PartyKeys, Protocol, ReplayGuard, Roster, Transcript, broadcast, open,
    seal, verify_broadcast,
};
use crate::secret::SecretBytes;

/// Envelopes of a key generation are bound to epoch 0; the stored key starts at epoch 1.
const KEYGEN_EPOCH: u64 = 0;

/// What a step produced (Debug never prints the share).
#[derive(Debug)]
pub enum RelayedStep {
    /// Sealed envelopes for the next wave (possibly none: the party advanced silently).
    Send(Vec<Vec<u8>>),
    /// This party finished; its transcript hash is ready for the echo.
    Done(GeneratedShare),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RunState {
    Idle,
    Running,
    Done,
    Failed,
}

/// A party behind the relay. Debug never prints keys or secrets.
pub struct RelayedParty<R: KeygenRng> {
    party: Box<Party<R>>,
    keys: Arc<PartyKeys>,
    me: String,
    parties: Vec<String>,
    roster: Roster,
    key_uid: String,
    session_hex: String,
    guard: ReplayGuard,
    transcript: Transcript,
    /// Broadcasts (own and peers') of rounds not yet absorbed, by round.
    pending: BTreeMap<u32, Vec<Envelope>>,
    /// Envelopes of the round after the one this party waits for, delivered early (see the
    /// module docs); opened at the next step.
    held: Vec<Envelope>,
    state: RunState,
}

impl<R: KeygenRng> std::fmt::Debug for RelayedParty<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayedParty")
            .field("me", &self.me)
            .field("parties", &self.parties)
            .field("state", &self.state)
            .field("round", &self.party.round())
            .finish_non_exhaustive()
    }
}

impl<R: KeygenRng> RelayedParty<R> {
    /// `party` must have been built with its index in `parties` (ids in party order: the
    /// cells, then `CUSTOMER_PARTY_ID` in customer mode); `roster` holds every party's card.
    pub fn new(
        party: Party<R>,
        keys: Arc<PartyKeys>,
        me: &str,
        parties: Vec<String>,
        roster: Roster,
        key_uid: &str,
        session_hex: &str,
    ) -> Self {
        let ctx = Context::new(Protocol::RsaKeygen, key_uid, session_hex, KEYGEN_EPOCH, 0);
        RelayedParty {
            party: Box::new(party),
            keys,
            me: me.to_owned(),
            parties,
            roster,
            key_uid: key_uid.to_owned(),
            session_hex: session_hex.to_owned(),
            guard: ReplayGuard::new(),
            transcript: Transcript::new(&ctx),
            pending: BTreeMap::new(),
            held: Vec::new(),
            state: RunState::Idle,
        }
    }

    /// The first round, sealed.
    pub fn start(&mut self) -> Result<Vec<Vec<u8>>, String> {
        if self.state != RunState::Idle {
            return Err("the party already started".into());
        }
        self.state = RunState::Running;
        let res = self.try_start();
        self.fail_on_err(res)
    }

    fn try_start(&mut self) -> Result<Vec<Vec<u8>>, String> {
        if self.my_index().is_none() {
            return Err(format!("{:?} is not a party of this session", self.me));
        }
        if let Some(id) = self.parties.iter().find(|id| self.roster.get(id).is_none()) {
            return Err(format!("party {id:?} has no relay card here"));
        }
        let first = self.party.start().map_err(|e| e.to_string())?;
        self.seal_all(first)
    }

    /// Take this party's inbox of one wave (every envelope addressed to it, of the round it
    /// waits for); answer with its next envelopes or its result.
    pub fn step(&mut self, envelopes: Vec<Vec<u8>>) -> Result<RelayedStep, String> {
        if self.state != RunState::Running {
            return Err(match self.state {
                RunState::Idle => "the party has not started",
                RunState::Done => "the party already finished",
                _ => "the party failed earlier",
            }
            .into());
        }
        let res = self.try_step(envelopes);
        self.fail_on_err(res)
    }

    fn fail_on_err<T>(&mut self, res: Result<T, String>) -> Result<T, String> {
        if res.is_err() {
            self.state = RunState::Failed;
            self.pending.clear();
            self.held.clear();
        }
        res
    }

    fn try_step(&mut self, envelopes: Vec<Vec<u8>>) -> Result<RelayedStep, String> {
        let round = self.party.round();
        let mut now = Vec::with_capacity(envelopes.len() + self.held.len());
        for env in std::mem::take(&mut self.held) {
            now.push(env);
        }
        for bytes in envelopes {
            let env = Envelope::from_bytes(&bytes).map_err(|e| e.to_string())?;
            // Only the next round may come early; anything else fails the context check.
            if env.header().round == round.wrapping_add(1) {
                self.held.push(env);
            } else {
                now.push(env);
            }
        }
        if now.is_empty() {
            return Err(format!(
                "round {round} is incomplete: no message of it in the batch"
            ));
        }
        let msgs = self.admit(round, now)?;
        // Every message of `round` arrived in this one wave: its broadcasts, and any earlier
        // round's this party only sent in, can be absorbed now.
        self.absorb_through(Some(round))?;
        let mut next = Vec::new();
        let mut done = None;
        for m in msgs {
            match self.party.handle(m).map_err(|e| e.to_string())? {
                Step::Send(out) => next.extend(out),
                Step::Done(share) => done = Some(share),
            }
        }
        if let Some(share) = done {
            if !next.is_empty() {
                return Err("the party sent messages after it finished".into());
            }
            self.absorb_through(None)?;
            self.state = RunState::Done;
            return Ok(RelayedStep::Done(share));
        }
        if next.is_empty() && self.party.round() == round {
            return Err(format!(
                "round {round} is incomplete: the batch lacks messages from some peers"
            ));
        }
        Ok(RelayedStep::Send(self.seal_all(next)?))
    }

    /// SHA-256 over every broadcast of the session; final once the party is Done.
    pub fn transcript_hash(&self) -> [u8; 32] {
        self.transcript.hash()
    }

    /// Every party's transcript hash, in party order, must equal ours.
    pub fn check_echo(&self, hashes: &[[u8; 32]]) -> Result<(), String> {
        if self.state != RunState::Done {
            return Err("the party has not finished".into());
        }
        if hashes.len() != self.parties.len() {
            return Err(format!(
                "{} transcript hashes for {} parties",
                hashes.len(),
                self.parties.len()
            ));
        }
        let echoes: Vec<(&str, [u8; 32])> = self
            .parties
            .iter()
            .map(String::as_str)
            .zip(hashes.iter().copied())
            .collect();
        self.transcript
            .check_echo(&echoes)
            .map_err(|e| e.to_string())
    }

    /// Customer mode, cells: precompute Paillier randomisers up to `max` in idle time (see
    /// `Party::precompute`). Returns how many are ready; 0 when there is nothing to do.
    pub fn precompute(&mut self, max: usize) -> usize {
        if self.state != RunState::Running {
            return 0;
        }
        // A failure here (no OS randomness) leaves the pool as it is; the step that needs
        // the randomisers makes its own and reports any failure there.
        self.party.precompute(max).unwrap_or(0)
    }

    pub fn stats(&self) -> &Stats {
        self.party.stats()
    }

    fn my_index(&self) -> Option<usize> {
        self.parties.iter().position(|p| *p == self.me)
    }

    fn context(&self, round: u32) -> Context {
        Context::new(
            Protocol::RsaKeygen,
            &self.key_uid,
            &self.session_hex,
            KEYGEN_EPOCH,
            round,
        )
    }

    /// Absorb the pending broadcasts of every round up to `last` (all of them if None), in
    /// round order, each round sorted by sender.
    fn absorb_through(&mut self, last: Option<u32>) -> Result<(), String> {
        let rest = match last {
            Some(r) => self.pending.split_off(&(r + 1)),
            None => BTreeMap::new(),
        };
        let ready = std::mem::replace(&mut self.pending, rest);
        for envs in ready.values() {
            self.transcript
                .absorb_round(envs)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Authenticate, open and check every envelope; keep the broadcasts for the transcript
    /// and return the protocol messages inside.
    fn admit(&mut self, round: u32, envelopes: Vec<Envelope>) -> Result<Vec<Message>, String> {
        let me = self.my_index().ok_or("not a party of this session")?;
        let ctx = self.context(round);
        let mut msgs = Vec::with_capacity(envelopes.len());
        for env in envelopes {
            let sender = &env.header().sender;
            let from = self
                .parties
                .iter()
                .position(|p| p == sender)
                .filter(|&i| i != me)
                .ok_or_else(|| format!("envelope from {sender:?}, not a peer in this session"))?;
            let plain = match env.kind() {
                Kind::Sealed => open(&self.keys, &self.me, &self.roster, &env, &ctx),
                Kind::Broadcast => verify_broadcast(&self.roster, &env, &ctx)
                    .map(|payload| SecretBytes::new(payload.to_vec())),
            }
            .map_err(|e| e.to_string())?;
            self.guard.admit(env.header()).map_err(|e| e.to_string())?;
            let msg = Message::from_bytes(plain.expose()).map_err(|e| e.to_string())?;
            let dest_ok = match msg.dest {
                Dest::Broadcast => env.kind() == Kind::Broadcast,
                Dest::To(j) => env.kind() == Kind::Sealed && j as usize == me,
            };
            if msg.sender as usize != from || msg.round != env.header().round || !dest_ok {
                return Err(format!(
                    "message from {sender:?} does not match its envelope's sender, round or kind"
                ));
            }
            if env.kind() == Kind::Broadcast {
                self.pending.entry(round).or_default().push(env);
            }
            msgs.push(msg);
        }
        Ok(msgs)
    }

    /// Seal (pairwise) or sign (broadcast) a step's messages, each under its own round.
    fn seal_all(&mut self, msgs: Vec<Message>) -> Result<Vec<Vec<u8>>, String> {
        let mut out = Vec::with_capacity(msgs.len());
        for m in msgs {
            let round = m.round;
            let ctx = self.context(round);
            // The encoding holds a confidential body: wiped once sealed.
            let plain = Zeroizing::new(m.to_bytes());
            let env = match m.dest {
                Dest::To(j) => {
                    let id = self
                        .parties
                        .get(j as usize)
                        .ok_or("receiver out of range")?;
                    let card = self
                        .roster
                        .get(id)
                        .ok_or_else(|| format!("party {id:?} has no relay card here"))?;
                    seal(&self.keys, &self.me, card, &ctx, &plain)
                }
                Dest::Broadcast => broadcast(&self.keys, &self.me, &ctx, &plain),
            }
            .map_err(|e| e.to_string())?;
            out.push(env.to_bytes());
            if env.kind() == Kind::Broadcast {
                self.pending.entry(round).or_default().push(env);
            }
        }
        Ok(out)
    }
}
