//! What the relay could still do with valid, signed messages — replay them, deliver an old
//! round late, or show different parties different broadcasts — and the checks that stop it.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use super::context::{Context, Header, Kind, Protocol};
use super::envelope::Envelope;
use super::{RelayError, RelayResult};

/// One party's memory of the messages it accepted, per protocol run.
///
/// Admit a message only after `open` / `verify_broadcast` succeeded: the guard trusts the
/// header it is given, and an unauthenticated one could otherwise block the genuine message.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    runs: HashMap<(Protocol, String, String), RunSeen>,
}

#[derive(Debug, Default)]
struct RunSeen {
    latest_round: u32,
    /// (round, sender, kind) for rounds ≥ `latest_round`; older rounds are refused outright,
    /// so their entries are dropped as the run advances and memory stays per-round.
    seen: HashSet<(u32, String, Kind)>,
}

impl ReplayGuard {
    pub fn new() -> Self {
        ReplayGuard::default()
    }

    /// Refuses a second message of the same kind from the same sender in the same round of a
    /// run (a sender may send one broadcast and one sealed message per round), and any message
    /// for a round older than the newest this run has reached. Records the message otherwise.
    pub fn admit(&mut self, header: &Header) -> RelayResult<()> {
        let run_key = (
            header.protocol,
            header.key_uid.clone(),
            header.session_id.clone(),
        );
        let run = self.runs.entry(run_key).or_default();
        if header.round < run.latest_round {
            return Err(RelayError::RoundWentBack {
                latest: run.latest_round,
                got: header.round,
            });
        }
        let entry = (header.round, header.sender.clone(), header.kind);
        if run.seen.contains(&entry) {
            return Err(RelayError::Replay {
                round: header.round,
                sender: header.sender.clone(),
            });
        }
        if header.round > run.latest_round {
            run.latest_round = header.round;
            run.seen.retain(|(round, _, _)| *round >= header.round);
        }
        run.seen.insert(entry);
        Ok(())
    }

    /// Drops a finished or aborted run. Its session id must never be reused (ids are random).
    pub fn forget(&mut self, ctx: &Context) {
        self.runs
            .remove(&(ctx.protocol, ctx.key_uid.clone(), ctx.session_id.clone()));
    }
}

const TRANSCRIPT_DOMAIN: &[u8] = b"keyfrag/relay/v1/transcript\0";

/// SHA-256 over every broadcast of one run, in order. Each party echoes `hash()` in its next
/// round; if the relay showed two parties different broadcasts, their hashes differ and
/// `check_echo` names who saw something else (CRYPTO-NOTES §1.7, §5.2 item 6).
#[derive(Clone)]
pub struct Transcript {
    hasher: Sha256,
    ctx: Context,
    last_round: u32,
}

impl Transcript {
    /// A transcript for the run named by `ctx` (its round is ignored: a run spans rounds).
    pub fn new(ctx: &Context) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(TRANSCRIPT_DOMAIN);
        hasher.update([ctx.protocol.code()]);
        for field in [ctx.key_uid.as_bytes(), ctx.session_id.as_bytes()] {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field);
        }
        hasher.update(ctx.epoch.to_be_bytes());
        Transcript {
            hasher,
            ctx: Context {
                round: 0,
                ..ctx.clone()
            },
            last_round: 0,
        }
    }

    /// Adds one broadcast (verified by the caller, or the party's own). Refuses sealed
    /// messages, broadcasts of another run, and rounds older than one already absorbed.
    pub fn absorb(&mut self, env: &Envelope) -> RelayResult<()> {
        let h = env.header();
        if h.kind != Kind::Broadcast {
            return Err(RelayError::WrongKind);
        }
        if h.protocol != self.ctx.protocol {
            return Err(RelayError::WrongProtocol);
        }
        if h.key_uid != self.ctx.key_uid {
            return Err(RelayError::WrongKey);
        }
        if h.session_id != self.ctx.session_id {
            return Err(RelayError::WrongSession);
        }
        if h.epoch != self.ctx.epoch {
            return Err(RelayError::WrongEpoch {
                expected: self.ctx.epoch,
                got: h.epoch,
            });
        }
        if h.round < self.last_round {
            return Err(RelayError::RoundWentBack {
                latest: self.last_round,
                got: h.round,
            });
        }
        self.last_round = h.round;
        let content = env.signed_content();
        self.hasher.update((content.len() as u64).to_be_bytes());
        self.hasher.update(&content);
        Ok(())
    }

    /// Adds one round's broadcasts in canonical order (by sender id), so the order in which
    /// the relay happened to deliver them does not matter. Refuses two from one sender.
    pub fn absorb_round(&mut self, envs: &[Envelope]) -> RelayResult<()> {
        let mut sorted: Vec<&Envelope> = envs.iter().collect();
        sorted.sort_by(|a, b| a.header().sender.cmp(&b.header().sender));
        for pair in sorted.windows(2) {
            if pair[0].header().sender == pair[1].header().sender {
                let h = pair[1].header();
                return Err(RelayError::Replay {
                    round: h.round,
                    sender: h.sender.clone(),
                });
            }
        }
        sorted.into_iter().try_for_each(|env| self.absorb(env))
    }

    pub fn hash(&self) -> [u8; 32] {
        self.hasher.clone().finalize().into()
    }

    /// Compares every party's echoed hash with ours; the error names the first that differs.
    pub fn check_echo(&self, echoes: &[(&str, [u8; 32])]) -> RelayResult<()> {
        let ours = self.hash();
        match echoes.iter().find(|(_, theirs)| *theirs != ours) {
            Some((party, _)) => Err(RelayError::TranscriptMismatch {
                party: (*party).to_owned(),
            }),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex: String = self.hash().iter().map(|b| format!("{b:02x}")).collect();
        f.debug_struct("Transcript")
            .field("ctx", &self.ctx)
            .field("hash", &hex)
            .finish()
    }
}
