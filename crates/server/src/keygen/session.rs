//! One cell's part in one generation: a `RelayedParty` (keyfrag-core: sealing, opening, the
//! replay guard and the transcript around a `Party`) and what only the cell does around it —
//! checking the result's form, storing the share at commit, auditing.
//!
//! Any refusal aborts the session: a relay that tampers, replays or reorders is not worth
//! continuing with, and the client starts again with a fresh session.
//!
//! Methods block (the party computes for up to seconds): call them on the blocking pool.

use std::sync::Arc;

use keyfrag_core::keygen::relayed::{RelayedParty, RelayedStep};
use keyfrag_core::keygen::{GeneratedShare, KeygenParams, OsRng, PUBLIC_EXPONENT, Party, Stats};
use keyfrag_core::relay::PartyCard;
use keyfrag_core::rsa_share::RsaShare;
use keyfrag_proto::keygen::{KeygenBody, KeygenDone};

use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::relay_identity::RelayIdentity;
use crate::routes::keys::{NewRsaKey, store_rsa_share};
use crate::state::AppState;

/// What `start` was asked for, validated by the route.
pub struct StartParams {
    pub token: String,
    pub session: String,
    pub session_bytes: [u8; 16],
    pub key_uid: String,
    pub bits: usize,
    /// Party ids in order: the cells, then `CUSTOMER_PARTY_ID` in customer mode.
    pub parties: Vec<String>,
    pub me: usize,
    pub lease_secs: Option<u64>,
    /// The share goes into the token's key pool (`routes::pool`).
    pub pooled: bool,
    /// Customer mode: the customer's card pinned on the token (the last party).
    pub customer_card: Option<PartyCard>,
}

enum State {
    Running,
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
    cell: String,
    /// Dropped (and with it every secret of the run) when the session fails or commits.
    party: Option<Box<RelayedParty<OsRng>>>,
    state: State,
}

/// The session's parameters: `KeygenParams::for_request`, as the customer derives them.
pub fn keygen_params(session: [u8; 16], bits: usize, customer: bool) -> KeygenParams {
    KeygenParams::for_request(session, bits, customer)
}

impl Session {
    /// Build the party and its first round (sealed). The caller registers the session.
    pub fn start(p: StartParams, relay: Arc<RelayIdentity>) -> ApiResult<(Session, Vec<Vec<u8>>)> {
        let customer = p.customer_card.is_some();
        let party = Party::new(
            p.me,
            p.parties.len(),
            keygen_params(p.session_bytes, p.bits, customer),
            OsRng,
        )
        .map_err(|e| ApiError::bad_request(format!("key generation: {e}")))?;
        let mut roster = relay.roster().clone();
        if let Some(card) = &p.customer_card {
            roster
                .add(card.clone())
                .map_err(|e| ApiError::bad_request(format!("customer card: {e}")))?;
        }
        let mut relayed = RelayedParty::new(
            party,
            relay.shared_keys(),
            relay.name(),
            p.parties.clone(),
            roster,
            &p.key_uid,
            &p.session,
        );
        let first = relayed.start().map_err(ApiError::internal)?;
        let session = Session {
            p,
            cell: relay.name().to_owned(),
            party: Some(Box::new(relayed)),
            state: State::Running,
        };
        Ok((session, first))
    }

    pub fn key_uid(&self) -> &str {
        &self.p.key_uid
    }

    /// A customer-mode session (the cells have idle-time work between steps).
    pub fn customer_mode(&self) -> bool {
        self.p.customer_card.is_some()
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
            self.p.session, self.cell
        );
        self.party = None;
        self.state = State::Failed(reason);
        ApiError::bad_request(msg)
    }

    fn not_running(&self) -> ApiError {
        let msg = match &self.state {
            State::Running => "running".to_owned(),
            State::Done { .. } => "already finished; commit or abort it".to_owned(),
            State::Committed(_) => "already committed".to_owned(),
            State::Failed(reason) => format!("aborted earlier: {reason}"),
        };
        ApiError::conflict(format!("key generation session {}: {msg}", self.p.session))
    }

    /// Take one wave's envelopes for this party; answer with its next envelopes (in customer
    /// mode possibly none: the party advanced and waits) or its result.
    pub fn step(&mut self, envelopes: Vec<Vec<u8>>) -> ApiResult<KeygenBody> {
        let (State::Running, Some(party)) = (&self.state, self.party.as_mut()) else {
            return Err(self.not_running());
        };
        match party.step(envelopes) {
            Ok(RelayedStep::Send(out)) => Ok(KeygenBody::Batch(out)),
            Ok(RelayedStep::Done(result)) => match self.finish(result) {
                Ok(body) => Ok(body),
                Err(reason) => Err(self.fail(reason)),
            },
            Err(reason) => Err(self.fail(reason)),
        }
    }

    /// Idle work between steps (customer mode, cells): precompute Paillier randomisers up to
    /// `max`; returns how many are ready (0 when there is nothing to do).
    pub fn precompute(&mut self, max: usize) -> usize {
        match (&self.state, self.party.as_mut()) {
            (State::Running, Some(party)) => party.precompute(max),
            _ => 0,
        }
    }

    pub fn stats(&self) -> Option<&Stats> {
        self.party.as_deref().map(RelayedParty::stats)
    }

    fn finish(&mut self, result: GeneratedShare) -> Result<KeygenBody, String> {
        let GeneratedShare {
            modulus,
            public_exponent,
            share,
        } = result;
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
        let transcript_hash = self.party.as_ref().ok_or("no party")?.transcript_hash();
        let reply = KeygenDone {
            modulus,
            public_exponent,
            transcript_hash,
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
        let echo = match &self.party {
            Some(party) => party.check_echo(&hashes),
            None => Err("no party".into()),
        };
        if let Err(e) = echo {
            return Err(self.fail(e));
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
                self.party = None;
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
        self.party = None;
        self.state = State::Failed("aborted by the client".into());
    }
}
