//! The steps of a refresh run on this cell. Each blocks (partials, sealing, the store): call
//! on the blocking pool. Each is idempotent: repeating a step that took effect answers as
//! the first time did.

use std::collections::BTreeMap;
use std::sync::Arc;

use keyfrag_core::dprf::refresh::PrfDeal;
use keyfrag_core::refresh::{CheckPartials, Deal, check_input, products_match};
use keyfrag_core::relay::{Context, Envelope, Protocol, broadcast, open, seal, verify_broadcast};
use keyfrag_core::rsa_partial::rsa_partial;
use keyfrag_core::secret::SecretBytes;
use keyfrag_proto::ErrorCode;
use keyfrag_proto::prf::KIND_PRF;
use keyfrag_proto::refresh::{
    AbortRequest, CheckResponse, CommitRequest, DealRequest, DealResponse, EpochResponse,
    PrepareRequest,
};

use super::{DealSlot, KindDeal, ROUND_CHECK, ROUND_DEAL, prf};
use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::relay_identity::RelayIdentity;
use crate::routes::keys::{KIND_RSA, key_not_found};
use crate::routes::{check_uid, now_secs};
use crate::sealing::SHARE_FORMAT;
use crate::state::AppState;
use crate::store::{KeyShares, ShareRow};

const MAX_PARTIES: usize = keyfrag_core::keygen::MAX_PARTIES;

fn relay(state: &AppState) -> ApiResult<Arc<RelayIdentity>> {
    state.relay().cloned().ok_or_else(|| {
        ApiError::conflict(format!(
            "cell {} has no relay identity (relay_seed_file and cluster_file in its config) \
             and cannot take part in a refresh",
            state.name()
        ))
    })
}

fn load(state: &AppState, token: &str, uid: &str) -> ApiResult<KeyShares> {
    check_uid("key uid", uid)?;
    let k = state
        .store()
        .key_shares(token, uid, now_secs())?
        .ok_or_else(|| key_not_found(uid))?;
    if k.key.kind != KIND_RSA && k.key.kind != KIND_PRF {
        return Err(ApiError::bad_request(format!(
            "key {uid} is a {} key, which is not refreshed",
            k.key.kind
        )));
    }
    Ok(k)
}

fn context(uid: &str, session: &str, from_epoch: u64, round: u32) -> Context {
    Context::new(Protocol::Refresh, uid, session, from_epoch, round)
}

/// This cell's index among `parties`: 2 to 16 distinct cells of its cluster file.
fn check_parties(relay: &RelayIdentity, parties: &[String]) -> ApiResult<usize> {
    if !(2..=MAX_PARTIES).contains(&parties.len()) {
        return Err(ApiError::bad_request(format!(
            "a refresh needs 2 to {MAX_PARTIES} parties, got {}",
            parties.len()
        )));
    }
    for (i, p) in parties.iter().enumerate() {
        if parties[..i].contains(p) {
            return Err(ApiError::bad_request(format!("party {p:?} listed twice")));
        }
        if p.contains('\n') || relay.roster().get(p).is_none() {
            return Err(ApiError::bad_request(format!(
                "party {p:?} is not in the cluster file of cell {}",
                relay.name()
            )));
        }
    }
    parties
        .iter()
        .position(|p| p == relay.name())
        .ok_or_else(|| {
            ApiError::bad_request(format!("this cell ({}) is not a party", relay.name()))
        })
}

fn pending_is(k: &KeyShares, session: &str) -> bool {
    k.pending.as_ref().and_then(|p| p.session.as_deref()) == Some(session)
}

fn committed_is(k: &KeyShares, session: &str) -> bool {
    k.session.as_deref() == Some(session)
}

/// DEAL: seal a fresh zero-sum delta to every peer (or repeat the deal already made).
pub fn deal(state: &AppState, token: &str, uid: &str, req: DealRequest) -> ApiResult<DealResponse> {
    let relay = relay(state)?;
    check_uid("session id", &req.session)?;
    let me = check_parties(&relay, &req.parties)?;
    let k = load(state, token, uid)?;
    let is_prf = k.key.kind == KIND_PRF;
    // A PRF key has no public part the cells share: its commitments are per epoch, per cell.
    let answer = |envelopes| DealResponse {
        kind: k.key.kind.clone(),
        modulus: if is_prf {
            Vec::new()
        } else {
            k.key.modulus.clone()
        },
        public_exponent: if is_prf {
            Vec::new()
        } else {
            k.key.public_exponent.clone()
        },
        envelopes,
    };
    if k.key.lease_secs.is_some() {
        return Err(ApiError::conflict(format!(
            "key {uid} is a session key (it has a lease): only token keys are refreshed"
        )));
    }
    let deals = state.refresh_deals();
    if let Some(envelopes) = deals.repeat(token, uid, &req.session, req.epoch, &req.parties) {
        return Ok(answer(envelopes));
    }
    if committed_is(&k, &req.session) || pending_is(&k, &req.session) {
        return Err(ApiError::conflict(format!(
            "refresh {} of key {uid} is past its deal on this cell",
            req.session
        )));
    }
    if state.store().refresh_fenced(token, uid, &req.session)? {
        return Err(ApiError::conflict(format!(
            "refresh {} of key {uid} was aborted",
            req.session
        )));
    }
    if k.key.epoch != req.epoch {
        return Err(ApiError::conflict(format!(
            "key {uid} is at epoch {}, not {}",
            k.key.epoch, req.epoch
        )));
    }
    if let Some(p) = &k.pending {
        return Err(ApiError::conflict(format!(
            "key {uid} has refresh {} pending; resolve it first",
            p.session.as_deref().unwrap_or("?")
        )));
    }
    if k.previous.is_some() {
        return Err(ApiError::conflict(format!(
            "key {uid}: the refresh to epoch {} is not finalized",
            k.key.epoch
        )));
    }
    let deal = if is_prf {
        KindDeal::Prf(PrfDeal::new(me, req.parties.len()).map_err(ApiError::internal)?)
    } else {
        KindDeal::Rsa(
            Deal::new(me, req.parties.len(), k.key.bits as usize).map_err(ApiError::internal)?,
        )
    };
    let ctx = context(uid, &req.session, req.epoch, ROUND_DEAL);
    let envelopes = deal
        .peers()
        .into_iter()
        .map(|(j, body)| {
            let card = relay
                .roster()
                .get(&req.parties[j])
                .ok_or_else(|| ApiError::internal("a checked party left the roster"))?;
            seal(relay.keys(), relay.name(), card, &ctx, body.expose())
                .map(|env| env.to_bytes())
                .map_err(ApiError::internal)
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let slot = DealSlot::new(
        &req.session,
        req.epoch,
        req.parties.clone(),
        deal,
        envelopes.clone(),
    );
    let inserted = deals.insert(token, uid, slot);
    if !inserted {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            "too many refresh deals are waiting on this cell",
        ));
    }
    audit::record(token, uid, "refresh-deal", "ok");
    Ok(answer(envelopes))
}

/// PREPARE: add every peer's delta and the own one to the committed share, store the result
/// as pending, answer with the check. Any refusal consumes the deal: the client aborts the
/// run and starts another.
pub fn prepare(
    state: &AppState,
    token: &str,
    uid: &str,
    req: PrepareRequest,
) -> ApiResult<CheckResponse> {
    let relay = relay(state)?;
    check_uid("session id", &req.session)?;
    let k = load(state, token, uid)?;
    if committed_is(&k, &req.session) || pending_is(&k, &req.session) {
        return stored_check(&k, &req.session);
    }
    let slot = state
        .refresh_deals()
        .take(token, uid, &req.session)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no deal for refresh {} of key {uid} on this cell (it expired, was replaced, \
                 or the cell restarted)",
                req.session
            ))
        })?;
    if k.key.epoch != slot.from_epoch {
        return Err(ApiError::conflict(format!(
            "key {uid} moved to epoch {} since the deal",
            k.key.epoch
        )));
    }
    let refused = |why: String| {
        audit::record(token, uid, "refresh-prepare", "refused");
        ApiError::bad_request(format!("refresh {} of key {uid}: {why}", req.session))
    };
    let ctx = context(uid, &req.session, slot.from_epoch, ROUND_DEAL);
    let me = relay.name();
    let mut received: BTreeMap<usize, SecretBytes> = BTreeMap::new();
    for bytes in &req.envelopes {
        let env = Envelope::from_bytes(bytes).map_err(|e| refused(e.to_string()))?;
        let sender = &env.header().sender;
        let from = slot
            .parties
            .iter()
            .position(|p| p == sender)
            .filter(|_| sender != me)
            .ok_or_else(|| refused(format!("a delta from {sender:?}, not a peer of the run")))?;
        let body = open(relay.keys(), me, relay.roster(), &env, &ctx)
            .map_err(|e| refused(e.to_string()))?;
        if received.insert(from, body).is_some() {
            return Err(refused(format!("two deltas from {sender:?}")));
        }
    }
    if received.len() + 1 != slot.parties.len() {
        return Err(refused(format!(
            "{} deltas for {} peers",
            received.len(),
            slot.parties.len() - 1
        )));
    }
    let deltas: Vec<&[u8]> = received.values().map(SecretBytes::expose).collect();
    let epoch = slot.from_epoch + 1;
    // The check, signed now and stored with the pending share: re-issued as is later, even
    // once the share it was computed from is gone.
    let run = Run {
        state,
        token,
        uid,
        key: &k,
        session: &req.session,
        refused: &refused,
    };
    let (sealed, payload) = match &slot.deal {
        KindDeal::Rsa(deal) => rsa_prepare(&run, deal, &deltas)?,
        KindDeal::Prf(deal) => prf::prepare(&run, deal, &deltas)?,
    };
    let ctx = context(uid, &req.session, slot.from_epoch, ROUND_CHECK);
    let check = broadcast(relay.keys(), me, &ctx, &payload)
        .map_err(ApiError::internal)?
        .to_bytes();
    let row = ShareRow {
        epoch,
        format: SHARE_FORMAT,
        sealed_share: sealed,
        session: Some(req.session.clone()),
        parties: slot.parties.clone(),
        check: Some(check),
    };
    state
        .store()
        .put_pending(token, uid, slot.from_epoch, &req.session, &row, now_secs())?;
    audit::record(token, uid, "refresh-prepare", "ok");
    let k = load(state, token, uid)?;
    stored_check(&k, &req.session)
}

/// What the kind-specific parts of a step see of the run.
pub(super) struct Run<'a> {
    pub(super) state: &'a AppState,
    pub(super) token: &'a str,
    pub(super) uid: &'a str,
    pub(super) key: &'a KeyShares,
    pub(super) session: &'a str,
    /// A refusal of the run (audited, bad request).
    pub(super) refused: &'a dyn Fn(String) -> ApiError,
}

/// PREPARE of an RSA share: the pending share, sealed at the next epoch, and the check
/// payload (its partials on the run's input under the committed and the pending share).
fn rsa_prepare(run: &Run<'_>, deal: &Deal, deltas: &[&[u8]]) -> ApiResult<(Vec<u8>, Vec<u8>)> {
    let (k, uid, token) = (run.key, run.uid, run.token);
    let master = run.state.master_key();
    let share = master
        .open_share(token, uid, k.key.epoch, k.key.format, &k.key.sealed_share)
        .map_err(ApiError::internal)?;
    let pending = deal
        .apply(&share, deltas)
        .map_err(|e| (run.refused)(e.to_string()))?;
    let modulus = &k.key.modulus;
    let x = check_input(modulus, uid, run.session, k.key.epoch).map_err(ApiError::internal)?;
    let payload = CheckPartials {
        old: rsa_partial(modulus, &x, &share).map_err(ApiError::internal)?,
        pending: rsa_partial(modulus, &x, &pending).map_err(ApiError::internal)?,
    }
    .to_bytes();
    let sealed = master
        .seal_share(token, uid, k.key.epoch + 1, &pending)
        .map_err(ApiError::internal)?;
    Ok((sealed, payload))
}

/// CHECK again (recovery of a run whose checks another client collected).
pub fn check(state: &AppState, token: &str, uid: &str, session: &str) -> ApiResult<CheckResponse> {
    check_uid("session id", session)?;
    let k = load(state, token, uid)?;
    stored_check(&k, session)
}

/// This cell's signed check of run `session`, as stored at PREPARE: its partials on the
/// run's input under the share the run leaves and the share it makes.
fn stored_check(k: &KeyShares, session: &str) -> ApiResult<CheckResponse> {
    let check = match &k.pending {
        Some(p) if pending_is(k, session) => &p.check,
        _ if committed_is(k, session) => &k.check,
        _ => {
            return Err(ApiError::conflict(format!(
                "refresh {session} of key {} is neither pending nor committed on this cell",
                k.key.uid
            )));
        }
    };
    check
        .clone()
        .map(|check| CheckResponse { check })
        .ok_or_else(|| ApiError::internal("a refresh share without its check"))
}

/// COMMIT: with a valid check from every party of the run and Π old = Π pending, the
/// pending share becomes the committed one.
pub fn commit(
    state: &AppState,
    token: &str,
    uid: &str,
    req: CommitRequest,
) -> ApiResult<EpochResponse> {
    let relay = relay(state)?;
    check_uid("session id", &req.session)?;
    let k = load(state, token, uid)?;
    if committed_is(&k, &req.session) {
        return Ok(EpochResponse { epoch: k.key.epoch });
    }
    let pending = match &k.pending {
        Some(p) if pending_is(&k, &req.session) => p,
        _ => {
            return Err(ApiError::conflict(format!(
                "refresh {} of key {uid} is not pending on this cell",
                req.session
            )));
        }
    };
    let refused = |why: String| {
        audit::record(token, uid, "refresh-commit", "refused");
        ApiError::bad_request(format!("refresh {} of key {uid}: {why}", req.session))
    };
    let ctx = context(uid, &req.session, k.key.epoch, ROUND_CHECK);
    let mut checks: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for bytes in &req.checks {
        let env = Envelope::from_bytes(bytes).map_err(|e| refused(e.to_string()))?;
        let payload =
            verify_broadcast(relay.roster(), &env, &ctx).map_err(|e| refused(e.to_string()))?;
        let sender = env.header().sender.as_str();
        let party = pending
            .parties
            .iter()
            .find(|p| *p == sender)
            .ok_or_else(|| refused(format!("a check from {sender:?}, not a party of the run")))?;
        if checks.insert(party, payload.to_vec()).is_some() {
            return Err(refused(format!("two checks from {sender:?}")));
        }
    }
    if checks.len() != pending.parties.len() {
        return Err(refused(format!(
            "{} checks for {} parties",
            checks.len(),
            pending.parties.len()
        )));
    }
    if k.key.kind == KIND_PRF {
        // In party order: the order of the key's new list of commitments.
        let ordered: Vec<&[u8]> = pending
            .parties
            .iter()
            .map(|p| checks[p.as_str()].as_slice())
            .collect();
        let run = Run {
            state,
            token,
            uid,
            key: &k,
            session: &req.session,
            refused: &refused,
        };
        prf::commit(&run, pending, &ordered)?;
    } else {
        let all = checks
            .values()
            .map(|p| CheckPartials::from_bytes(p, k.key.modulus.len()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| refused(e.to_string()))?;
        if !products_match(&k.key.modulus, &all).map_err(|e| refused(e.to_string()))? {
            return Err(refused(
                "the pending shares do not sum to the committed ones (check products differ)"
                    .into(),
            ));
        }
    }
    let epoch = state
        .store()
        .commit_pending(token, uid, &req.session, now_secs())?;
    audit::record(token, uid, "refresh-commit", "ok");
    Ok(EpochResponse { epoch })
}

/// FINALIZE: the previous share is deleted (sent once every cell acknowledged COMMIT).
pub fn finalize(
    state: &AppState,
    token: &str,
    uid: &str,
    session: &str,
) -> ApiResult<EpochResponse> {
    check_uid("key uid", uid)?;
    check_uid("session id", session)?;
    let epoch = state
        .store()
        .finalize_refresh(token, uid, session, now_secs())?;
    audit::record(token, uid, "refresh-finalize", "ok");
    Ok(EpochResponse { epoch })
}

/// ABORT: forget the run here and fence it; refused once this cell committed it.
pub fn abort(state: &AppState, token: &str, uid: &str, req: AbortRequest) -> ApiResult<()> {
    check_uid("key uid", uid)?;
    check_uid("session id", &req.session)?;
    drop(state.refresh_deals().take(token, uid, &req.session));
    state.store().abort_refresh(
        token,
        uid,
        &req.session,
        req.epoch,
        req.only_if_absent,
        now_secs(),
    )?;
    audit::record(token, uid, "refresh-abort", "ok");
    Ok(())
}
