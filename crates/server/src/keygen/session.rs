//! One cell's part in one generation: its `Party`, and the relay checks around it.
//!
//! Every outgoing message is sealed to its receiver or signed as a broadcast, under the context
//! (RsaKeygen, key uid, session, epoch 0, the message's round); every incoming envelope must
//! open (or verify) under the round this party expects, from a peer of this session, and pass
//! the `ReplayGuard`. Any refusal aborts the session: a relay that tampers, replays or reorders
//! is not worth continuing with, and the client starts again with a fresh session.
//!
//! Methods block (the party computes for up to seconds): call them on the blocking pool.

use std::sync::Arc;

use keyfrag_core::keygen::{Dest, KeygenParams, Message, OsRng, PUBLIC_EXPONENT, Party, Step};
use keyfrag_core::relay::{
    Context, Envelope, Kind, Protocol, ReplayGuard, Transcript, broadcast, open, seal,
    verify_broadcast,
};
use keyfrag_core::rsa_share::RsaShare;
use keyfrag_core::secret::SecretBytes;
use keyfrag_proto::keygen::{KeygenBody, KeygenDone};
use zeroize::Zeroizing;

use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::relay_identity::RelayIdentity;
use crate::routes::keys::{NewRsaKey, store_rsa_share};
use crate::state::AppState;

/// Envelopes of this key generation are bound to epoch 0; the stored key starts at epoch 1.
const KEYGEN_EPOCH: u64 = 0;

/// What `start` was asked for, validated by the route.
pub struct StartParams {
    pub token: String,
    pub session: String,
    pub session_bytes: [u8; 16],
    pub key_uid: String,
    pub bits: usize,
    pub parties: Vec<String>,
    pub me: usize,
    pub lease_secs: Option<u64>,
    /// The share goes into the token's key pool (`routes::pool`).
    pub pooled: bool,
}

enum State {
    Running(Box<Party<OsRng>>),
    /// The party finished; the share waits for the transcript check at commit.
    Done {
        share: RsaShare,
        key: NewRsaKey,
    },
    Committed(Vec<[u8; 32]>),
    Failed(String),
}

pub struct Session {
    p: StartParams,
    relay: Arc<RelayIdentity>,
    state: State,
    guard: ReplayGuard,
    transcript: Transcript,
    /// This party's own broadcasts of the round in flight: absorbed into the transcript
    /// together with the peers', in canonical order, when the round's batch arrives.
    own_broadcasts: Vec<Envelope>,
    expected_round: u32,
}

/// Candidates per BGW batch: the core default (tuned for 2048+ bits) except at 1024 bits,
/// where a smaller batch wastes less work past the hit (as the core tests do). A function of
/// the public request only, so every party derives the same parameters.
fn params(session: [u8; 16], bits: usize) -> KeygenParams {
    let mut params = KeygenParams::new(session, bits);
    if bits <= 1024 {
        params.batch = 256;
    }
    params
}

impl Session {
    /// Build the party and its first round (sealed). The caller registers the session.
    pub fn start(p: StartParams, relay: Arc<RelayIdentity>) -> ApiResult<(Session, Vec<Vec<u8>>)> {
        let ctx = Context::new(Protocol::RsaKeygen, &p.key_uid, &p.session, KEYGEN_EPOCH, 0);
        let mut party = Party::new(
            p.me,
            p.parties.len(),
            params(p.session_bytes, p.bits),
            OsRng,
        )
        .map_err(|e| ApiError::bad_request(format!("key generation: {e}")))?;
        let first = party.start().map_err(ApiError::internal)?;
        let mut session = Session {
            transcript: Transcript::new(&ctx),
            p,
            relay,
            state: State::Running(Box::new(party)),
            guard: ReplayGuard::new(),
            own_broadcasts: Vec::new(),
            expected_round: 0,
        };
        let out = session.seal_all(first).map_err(ApiError::internal)?;
        Ok((session, out))
    }

    pub fn key_uid(&self) -> &str {
        &self.p.key_uid
    }

    fn context(&self, round: u32) -> Context {
        Context::new(
            Protocol::RsaKeygen,
            &self.p.key_uid,
            &self.p.session,
            KEYGEN_EPOCH,
            round,
        )
    }

    /// Abort: the party (and with it every secret of the run) is dropped, and any later
    /// request gets `reason`.
    fn fail(&mut self, reason: String) -> ApiError {
        audit::record(&self.p.token, &self.p.key_uid, "rsa-keygen", "aborted");
        tracing::warn!(
            session = %self.p.session, key = %self.p.key_uid, "key generation aborted: {reason}"
        );
        let msg = format!(
            "key generation session {} aborted on cell {}: {reason}",
            self.p.session,
            self.relay.name()
        );
        self.state = State::Failed(reason);
        ApiError::bad_request(msg)
    }

    fn not_running(&self) -> ApiError {
        let msg = match &self.state {
            State::Running(_) => "running".to_owned(),
            State::Done { .. } => "already finished; commit or abort it".to_owned(),
            State::Committed(_) => "already committed".to_owned(),
            State::Failed(reason) => format!("aborted earlier: {reason}"),
        };
        ApiError::conflict(format!("key generation session {}: {msg}", self.p.session))
    }

    /// Take one round's envelopes for this party; answer with its next round or its result.
    pub fn step(&mut self, envelopes: Vec<Vec<u8>>) -> ApiResult<KeygenBody> {
        let State::Running(_) = self.state else {
            return Err(self.not_running());
        };
        match self.try_step(envelopes) {
            Ok(body) => Ok(body),
            Err(reason) => Err(self.fail(reason)),
        }
    }

    fn try_step(&mut self, envelopes: Vec<Vec<u8>>) -> Result<KeygenBody, String> {
        let round = self.expected_round;
        let msgs = self.admit(envelopes)?;
        let State::Running(party) = &mut self.state else {
            return Err("session not running".into());
        };
        let mut next = Vec::new();
        let mut done = None;
        for m in msgs {
            match party.handle(m).map_err(|e| e.to_string())? {
                Step::Send(out) => next.extend(out),
                Step::Done(share) => done = Some(share),
            }
        }
        if let Some(result) = done {
            return self.finish(result.modulus, result.public_exponent, result.share);
        }
        if next.is_empty() {
            return Err(format!(
                "round {round} is incomplete: the batch lacks messages from some peers"
            ));
        }
        Ok(KeygenBody::Batch(self.seal_all(next)?))
    }

    /// Authenticate, open and order-check every envelope of the batch, absorb the round's
    /// broadcasts into the transcript, and return the protocol messages inside.
    fn admit(&mut self, envelopes: Vec<Vec<u8>>) -> Result<Vec<Message>, String> {
        let ctx = self.context(self.expected_round);
        let relay = self.relay.clone();
        let mut broadcasts = std::mem::take(&mut self.own_broadcasts);
        let mut msgs = Vec::with_capacity(envelopes.len());
        for bytes in envelopes {
            let env = Envelope::from_bytes(&bytes).map_err(|e| e.to_string())?;
            let sender = &env.header().sender;
            let from = self
                .p
                .parties
                .iter()
                .position(|p| p == sender)
                .filter(|&i| i != self.p.me)
                .ok_or_else(|| format!("envelope from {sender:?}, not a peer in this session"))?;
            let plain = match env.kind() {
                Kind::Sealed => open(relay.keys(), relay.name(), relay.roster(), &env, &ctx),
                Kind::Broadcast => verify_broadcast(relay.roster(), &env, &ctx)
                    .map(|payload| SecretBytes::new(payload.to_vec())),
            }
            .map_err(|e| e.to_string())?;
            self.guard.admit(env.header()).map_err(|e| e.to_string())?;
            let msg = Message::from_bytes(plain.expose()).map_err(|e| e.to_string())?;
            let dest_ok = match msg.dest {
                Dest::Broadcast => env.kind() == Kind::Broadcast,
                Dest::To(j) => env.kind() == Kind::Sealed && j as usize == self.p.me,
            };
            if msg.sender as usize != from || msg.round != env.header().round || !dest_ok {
                return Err(format!(
                    "message from {sender:?} does not match its envelope's sender, round or kind"
                ));
            }
            if env.kind() == Kind::Broadcast {
                broadcasts.push(env);
            }
            msgs.push(msg);
        }
        self.transcript
            .absorb_round(&broadcasts)
            .map_err(|e| e.to_string())?;
        Ok(msgs)
    }

    /// Seal (pairwise) or sign (broadcast) one round's messages.
    fn seal_all(&mut self, msgs: Vec<Message>) -> Result<Vec<Vec<u8>>, String> {
        let relay = self.relay.clone();
        let round = msgs.first().map(|m| m.round).unwrap_or(self.expected_round);
        let mut out = Vec::with_capacity(msgs.len());
        for m in msgs {
            if m.round != round {
                return Err("the party emitted messages of two rounds at once".into());
            }
            let ctx = self.context(round);
            // The encoding holds a confidential body: wiped once sealed.
            let plain = Zeroizing::new(m.to_bytes());
            let env = match m.dest {
                Dest::To(j) => {
                    let id = self
                        .p
                        .parties
                        .get(j as usize)
                        .ok_or("receiver out of range")?;
                    let card = relay.roster().get(id).ok_or_else(|| {
                        format!("party {id:?} is not in this cell's cluster file")
                    })?;
                    seal(relay.keys(), relay.name(), card, &ctx, &plain)
                }
                Dest::Broadcast => broadcast(relay.keys(), relay.name(), &ctx, &plain),
            }
            .map_err(|e| e.to_string())?;
            out.push(env.to_bytes());
            if env.kind() == Kind::Broadcast {
                self.own_broadcasts.push(env);
            }
        }
        self.expected_round = round;
        Ok(out)
    }

    fn finish(
        &mut self,
        modulus: Vec<u8>,
        public_exponent: Vec<u8>,
        share: RsaShare,
    ) -> Result<KeygenBody, String> {
        let bits = modulus
            .iter()
            .position(|&b| b != 0)
            .map(|i| (modulus.len() - i) * 8 - modulus[i].leading_zeros() as usize)
            .unwrap_or(0);
        let e: Vec<u8> = PUBLIC_EXPONENT
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        if bits != self.p.bits || public_exponent != e {
            return Err("the generated public key does not have the requested form".into());
        }
        let key = NewRsaKey::check(&modulus, &public_exponent, &share, self.p.lease_secs)
            .and_then(|k| k.pooled(self.p.pooled))
            .map_err(|e| e.message)?;
        let reply = KeygenDone {
            modulus,
            public_exponent,
            transcript_hash: self.transcript.hash(),
        };
        self.state = State::Done { share, key };
        Ok(KeygenBody::Done(reply))
    }

    /// Store the share if every party echoes this party's transcript hash. The route drops
    /// the session once committed; until then the same hashes again succeed.
    pub fn commit(&mut self, state: &AppState, hashes: Vec<[u8; 32]>) -> ApiResult<()> {
        match &self.state {
            State::Committed(h) if *h == hashes => return Ok(()),
            State::Done { .. } => {}
            _ => return Err(self.not_running()),
        }
        if hashes.len() != self.p.parties.len() {
            return Err(ApiError::bad_request(format!(
                "{} transcript hashes for {} parties",
                hashes.len(),
                self.p.parties.len()
            )));
        }
        let echoes: Vec<(&str, [u8; 32])> = self
            .p
            .parties
            .iter()
            .map(String::as_str)
            .zip(hashes.iter().copied())
            .collect();
        if let Err(e) = self.transcript.check_echo(&echoes) {
            return Err(self.fail(e.to_string()));
        }
        let State::Done { share, key, .. } = &self.state else {
            return Err(self.not_running());
        };
        match store_rsa_share(
            state,
            &self.p.token,
            &self.p.key_uid,
            key,
            share,
            "rsa-keygen",
        ) {
            Ok(_) => {
                // Dropping the Done state wipes the in-memory share.
                self.state = State::Committed(hashes);
                Ok(())
            }
            Err(e) => Err(self.fail(format!("storing the share failed: {}", e.message))),
        }
    }

    /// Abort (the client's request): forget the party and the pending share.
    pub fn abort(&mut self) {
        if !matches!(self.state, State::Committed(_) | State::Failed(_)) {
            audit::record(&self.p.token, &self.p.key_uid, "rsa-keygen", "aborted");
        }
        self.state = State::Failed("aborted by the client".into());
    }
}
