//! Distributed RSA generation: `POST /v1/keygen/start`, `POST /v1/keygen/{session}/step`,
//! `POST /v1/keygen/{session}/commit`, `POST /v1/keygen/{session}/abort` (wire in
//! `keyfrag_proto::keygen`; the protocol in `crate::keygen`).
//!
//! No PIN is needed: the generated key is usable only after a login anyway (partials require
//! one). The access key still selects the token, as on every route.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use keyfrag_proto::keygen::{
    KeygenBody, KeygenCommitRequest, KeygenStartRequest, MAX_KEYGEN_BODY_BYTES, OCTET_STREAM,
};
use keyfrag_proto::token::Ack;

use keyfrag_core::customer::CUSTOMER_PARTY_ID;
use keyfrag_core::relay::PartyCard;

use super::{ApiJson, ack, admin_customer, check_uid, now_secs};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::keygen::{Session, StartParams, precompute_while_idle};
use crate::state::AppState;

const SIZES: [usize; 3] = [2048, 3072, 4096];
const MIN_PARTIES: usize = 3;
const MAX_PARTIES: usize = keyfrag_core::keygen::MAX_PARTIES;

/// A binary request body (the keygen step batch), with errors as `ErrorBody`s.
pub struct Binary(pub KeygenBody);

impl<S: Send + Sync> FromRequest<S> for Binary {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = super::read_body(req, state, MAX_KEYGEN_BODY_BYTES).await?;
        KeygenBody::from_bytes(&bytes)
            .map(Binary)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

fn binary(body: KeygenBody) -> Response {
    ([(CONTENT_TYPE, OCTET_STREAM)], body.to_bytes()).into_response()
}

/// A `{session}` path segment: 32 lowercase hex digits.
pub struct SessionPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for SessionPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_request("bad path"))?;
        check_uid("session id", &id)?;
        Ok(SessionPath(id))
    }
}

pub(crate) fn validate(req: &KeygenStartRequest, me: &str) -> ApiResult<(usize, [u8; 16])> {
    check_uid("session id", &req.session)?;
    check_uid("key uid", &req.key_uid)?;
    let bits = req.bits as usize;
    if !(SIZES.contains(&bits) || (bits == 1024 && req.allow_1024)) {
        return Err(ApiError::bad_request(format!(
            "RSA key size {bits} is not supported (2048, 3072, 4096; 1024 only where allowed)"
        )));
    }
    let n = req.parties.len();
    if !(MIN_PARTIES..=MAX_PARTIES).contains(&n) {
        return Err(ApiError::bad_request(format!(
            "key generation needs {MIN_PARTIES} to {MAX_PARTIES} parties, got {n}"
        )));
    }
    for (i, p) in req.parties.iter().enumerate() {
        if req.parties[..i].contains(p) {
            return Err(ApiError::bad_request(format!("party {p:?} listed twice")));
        }
    }
    let index = req
        .parties
        .iter()
        .position(|p| p == me)
        .ok_or_else(|| ApiError::bad_request(format!("this cell ({me}) is not a party")))?;
    let mut session = [0u8; 16];
    hex::decode_to_slice(&req.session, &mut session)
        .map_err(|_| ApiError::bad_request("session id must be 32 lowercase hex digits"))?;
    Ok((index, session))
}

/// The customer's card for a customer-mode start, None for a cells-only one. A token with a
/// pinned card generates only in customer mode, with exactly that card as the last party: a
/// cells-only key there would be one the customer cannot protect (docs/THREAT-MODEL.md).
async fn customer_party(
    state: &AppState,
    token: &str,
    req: &KeygenStartRequest,
    me: usize,
) -> ApiResult<Option<PartyCard>> {
    let pinned = admin_customer::pinned_card(state, token).await?;
    match (req.customer, pinned) {
        (false, None) => Ok(None),
        (false, Some(_)) => Err(ApiError::conflict(format!(
            "token {token:?} has a customer card pinned: its keys are generated only in \
             customer mode, with the customer's fragment as a party"
        ))),
        (true, None) => Err(ApiError::conflict(format!(
            "token {token:?} has no customer card pinned on cell {}; pin it first \
             (keyfrag customer-fragment pin)",
            state.name()
        ))),
        (true, Some(card)) => {
            let last = req.parties.len() - 1;
            if req.parties[last] != CUSTOMER_PARTY_ID || me == last {
                return Err(ApiError::bad_request(format!(
                    "customer mode: the last party must be {CUSTOMER_PARTY_ID:?}, after the cells"
                )));
            }
            Ok(Some(card))
        }
    }
}

pub async fn start(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<KeygenStartRequest>,
) -> ApiResult<Response> {
    let relay = state.relay().cloned().ok_or_else(|| {
        ApiError::conflict(format!(
            "cell {} has no relay identity (relay_seed_file and cluster_file in its config) \
             and cannot take part in key generation",
            state.name()
        ))
    })?;
    let (me, session_bytes) = validate(&req, relay.name())?;
    let customer_card = customer_party(&state, &caller.token, &req, me).await?;
    let cells = &req.parties[..req.parties.len() - usize::from(customer_card.is_some())];
    if let Some(p) = cells.iter().find(|p| relay.roster().get(p).is_none()) {
        return Err(ApiError::bad_request(format!(
            "party {p:?} is not in the cluster file of cell {}",
            relay.name()
        )));
    }
    super::keys::check_lease(req.lease_secs)?;
    if req.pooled && req.lease_secs.is_some() {
        return Err(ApiError::bad_request(
            "a pooled key has no lease (its claim may set one)",
        ));
    }
    let (t, u, now) = (caller.token.clone(), req.key_uid.clone(), now_secs());
    if state.db(move |s| s.key(&t, &u, now)).await?.is_some() {
        return Err(ApiError::conflict(format!(
            "key {} already exists",
            req.key_uid
        )));
    }
    let params = StartParams {
        token: caller.token.clone(),
        session: req.session.clone(),
        session_bytes,
        key_uid: req.key_uid.clone(),
        bits: req.bits as usize,
        parties: req.parties.clone(),
        me,
        lease_secs: req.lease_secs,
        pooled: req.pooled,
        customer_card,
    };
    let (session, first) = tokio::task::spawn_blocking(move || Session::start(params, relay))
        .await
        .map_err(ApiError::internal)??;
    state
        .keygen_sessions()
        .insert(&caller.token, &req.session, session)?;
    tracing::info!(
        target: "audit", token = %caller.token, subject = %req.key_uid, operation = "rsa-keygen",
        result = "started", bits = req.bits, customer = req.customer
    );
    Ok(binary(KeygenBody::Batch(first)))
}

pub async fn step(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SessionPath(id): SessionPath,
    Binary(body): Binary,
) -> ApiResult<Response> {
    let KeygenBody::Batch(envelopes) = body else {
        return Err(ApiError::bad_request("a step request carries a batch"));
    };
    let sessions = state.keygen_sessions().clone();
    let slot = sessions.get(&caller.token, &id)?;
    let idle = Arc::downgrade(&slot);
    let (reply, customer) = tokio::task::spawn_blocking(move || {
        let mut session = slot.lock_for_request();
        let reply = session.step(envelopes);
        let customer = session.customer_mode();
        drop(session);
        sessions.touch(&slot);
        (reply, customer)
    })
    .await
    .map_err(ApiError::internal)?;
    let reply = reply?;
    if customer && matches!(reply, KeygenBody::Batch(_)) {
        // The answer goes out now; the precompute runs beside it until the next step.
        tokio::task::spawn_blocking(move || precompute_while_idle(idle));
    }
    Ok(binary(reply))
}

pub async fn commit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SessionPath(id): SessionPath,
    ApiJson(req): ApiJson<KeygenCommitRequest>,
) -> ApiResult<axum::Json<Ack>> {
    let hashes = req
        .transcript_hashes
        .iter()
        .map(|h| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h, &mut out)
                .map(|_| out)
                .map_err(|_| ApiError::bad_request("transcript hashes must be 64 hex digits"))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let slot = state.keygen_sessions().get(&caller.token, &id)?;
    let st = state.clone();
    tokio::task::spawn_blocking(move || slot.lock_for_request().commit(&st, hashes))
        .await
        .map_err(ApiError::internal)??;
    // Done: the share is in the store, and the slot must not count against MAX_SESSIONS.
    state.keygen_sessions().remove(&caller.token, &id);
    Ok(ack())
}

/// Idempotent: aborting an unknown (finished, expired, already aborted) session succeeds.
/// A share already committed stays: the client deletes the key uid itself.
pub async fn abort(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SessionPath(id): SessionPath,
) -> ApiResult<axum::Json<Ack>> {
    if let Some(slot) = state.keygen_sessions().remove(&caller.token, &id) {
        // Waits for a step or commit in progress, so nothing is stored after this returns.
        tokio::task::spawn_blocking(move || slot.lock_for_request().abort())
            .await
            .map_err(ApiError::internal)?;
    }
    Ok(ack())
}
