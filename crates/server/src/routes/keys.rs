//! Key fragments: `PUT`/`GET`/`DELETE /v1/keys/{uid}`, `GET /v1/keys`,
//! `POST /v1/keys/lease` (partials: `partial.rs`; refresh: `refresh.rs`).

use axum::extract::State;
use axum::{Extension, Json};
use keyfrag_core::rsa_share::{RsaShare, share_bytes};
use keyfrag_core::secret::SecretBytes;
use keyfrag_proto::ErrorCode;
use keyfrag_proto::keys::{KeySummary, KeysResponse, LeaseRequest, PendingEpoch, PutRsaKeyRequest};
use keyfrag_proto::token::Ack;
use subtle::ConstantTimeEq;

use super::{ApiJson, UidPath, ack, check_uid, now_secs};
use crate::audit;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::sealing::SHARE_FORMAT;
use crate::state::AppState;
use crate::store::{KeyRow, KeyShares, PutKeyOutcome};

pub(crate) const KIND_RSA: &str = "rsa";
/// Epochs count refreshes; a key starts at 1.
const FIRST_EPOCH: u64 = 1;
const MIN_MODULUS_BITS: usize = 512;
/// Bounds the cost of one partial (and of a hostile PUT).
const MAX_MODULUS_BITS: usize = 16384;
const MAX_LEASE_SECS: u64 = 366 * 24 * 3600;

pub(crate) fn key_not_found(uid: &str) -> ApiError {
    ApiError::new(ErrorCode::KeyNotFound, format!("no key {uid}"))
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn bit_len(be: &[u8]) -> usize {
    match be.first() {
        Some(&b) => (be.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
        None => 0,
    }
}

pub(crate) fn check_lease(lease: Option<u64>) -> ApiResult<()> {
    match lease {
        Some(l) if l == 0 || l > MAX_LEASE_SECS => Err(ApiError::bad_request(format!(
            "lease_secs must be 1..={MAX_LEASE_SECS}"
        ))),
        _ => Ok(()),
    }
}

fn summary(row: &KeyRow, now: u64) -> KeySummary {
    KeySummary {
        uid: row.uid.clone(),
        kind: row.kind.clone(),
        bits: row.bits,
        epoch: row.epoch,
        lease_remaining_secs: row.expires_at.map(|e| e.saturating_sub(now)),
        epoch_session: None,
        previous_epoch: None,
        pending: None,
        pooled: row.pooled,
    }
}

/// A key's summary with where its refresh stands on this cell.
pub(crate) fn shares_summary(k: &KeyShares, now: u64) -> KeySummary {
    KeySummary {
        epoch_session: k.session.clone(),
        previous_epoch: k.previous.as_ref().map(|p| p.epoch),
        pending: k.pending.as_ref().map(|p| PendingEpoch {
            epoch: p.epoch,
            session: p.session.clone().unwrap_or_default(),
        }),
        ..summary(&k.key, now)
    }
}

/// Store this cell's share. Idempotent: the same content again succeeds (and renews a
/// lease); different content under a live uid is a conflict.
pub async fn put(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    UidPath(uid): UidPath,
    ApiJson(req): ApiJson<PutRsaKeyRequest>,
) -> ApiResult<Json<KeySummary>> {
    let share = RsaShare {
        negative: req.share.negative,
        magnitude: SecretBytes::new(req.share.magnitude.clone()),
    };
    let key = NewRsaKey::check(&req.modulus, &req.public_exponent, &share, req.lease_secs)?;
    let summary = tokio::task::spawn_blocking(move || {
        store_rsa_share(&state, &caller.token, &uid, &key, &share, "put-key")
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(summary))
}

/// The public part of a share to be stored, validated.
pub(crate) struct NewRsaKey {
    modulus: Vec<u8>,
    public_exponent: Vec<u8>,
    bits: usize,
    lease_secs: Option<u64>,
    /// Store it in the token's pool (a keygen with `pooled`); never with a lease.
    pooled: bool,
}

impl NewRsaKey {
    /// What `PUT /v1/keys/{uid}` accepts: an odd modulus of a supported size, an odd e > 1,
    /// a share of `share_bytes(bits)`, a lease within bounds.
    pub(crate) fn check(
        modulus: &[u8],
        public_exponent: &[u8],
        share: &RsaShare,
        lease_secs: Option<u64>,
    ) -> ApiResult<Self> {
        let modulus = strip_zeros(modulus).to_vec();
        let bits = bit_len(&modulus);
        if !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits)
            || modulus[modulus.len() - 1] & 1 == 0
        {
            return Err(ApiError::bad_request(format!(
                "modulus must be odd and {MIN_MODULUS_BITS}..={MAX_MODULUS_BITS} bits"
            )));
        }
        let e = strip_zeros(public_exponent).to_vec();
        if e.len() > modulus.len() || e.last().is_none_or(|b| b & 1 == 0) || e == [1] {
            return Err(ApiError::bad_request("public exponent must be odd and > 1"));
        }
        if share.magnitude.len() != share_bytes(bits) {
            return Err(ApiError::bad_request(format!(
                "share magnitude must be {} bytes for a {bits}-bit modulus",
                share_bytes(bits)
            )));
        }
        check_lease(lease_secs)?;
        Ok(NewRsaKey {
            modulus,
            public_exponent: e,
            bits,
            lease_secs,
            pooled: false,
        })
    }

    /// The key goes into the pool (`crate::routes::pool`) instead of straight to use. A
    /// pooled key waits without a lease: its claim gives it one if the claimer wants.
    pub(crate) fn pooled(mut self, pooled: bool) -> ApiResult<Self> {
        if pooled && self.lease_secs.is_some() {
            return Err(ApiError::bad_request(
                "a pooled key has no lease (its claim may set one)",
            ));
        }
        self.pooled = pooled;
        Ok(self)
    }
}

/// Seal and store a share at epoch 1 (blocking: call on the blocking pool). Shared by
/// `PUT /v1/keys/{uid}` and the keygen commit, so a generated share is stored exactly as an
/// imported one. Idempotent: the same content again succeeds (and renews a lease).
pub(crate) fn store_rsa_share(
    state: &AppState,
    token: &str,
    uid: &str,
    key: &NewRsaKey,
    share: &RsaShare,
    operation: &str,
) -> ApiResult<KeySummary> {
    let store = state.store();
    let sealed = state
        .master_key()
        .seal_share(token, uid, FIRST_EPOCH, share)
        .map_err(ApiError::internal)?;
    let now = now_secs();
    let row = KeyRow {
        uid: uid.to_owned(),
        kind: KIND_RSA.into(),
        bits: key.bits as u32,
        modulus: key.modulus.clone(),
        public_exponent: key.public_exponent.clone(),
        epoch: FIRST_EPOCH,
        format: SHARE_FORMAT,
        sealed_share: sealed,
        lease_secs: key.lease_secs,
        expires_at: key.lease_secs.map(|l| now + l),
        pooled: key.pooled,
    };
    let existing = match store.put_key(token, &row, now)? {
        PutKeyOutcome::Inserted => {
            audit::record(token, uid, operation, "ok");
            return Ok(summary(&row, now));
        }
        PutKeyOutcome::Exists(existing) => existing,
    };
    let stored = state
        .master_key()
        .open_share(
            token,
            uid,
            existing.epoch,
            existing.format,
            &existing.sealed_share,
        )
        .map_err(ApiError::internal)?;
    let same_share = stored.negative == share.negative
        && bool::from(stored.magnitude.expose().ct_eq(share.magnitude.expose()));
    let same = same_share
        && existing.kind == row.kind
        && existing.modulus == row.modulus
        && existing.public_exponent == row.public_exponent
        && existing.epoch == FIRST_EPOCH;
    if !same {
        audit::record(token, uid, operation, "conflict");
        return Err(ApiError::conflict(format!(
            "key {uid} exists with different content"
        )));
    }
    store.renew_leases(token, &[uid.to_owned()], key.lease_secs, now)?;
    let current = store.key(token, uid, now)?;
    Ok(summary(current.as_ref().unwrap_or(&existing), now))
}

/// Deleting a key that is not there succeeds: deletion is idempotent.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    UidPath(uid): UidPath,
) -> ApiResult<Json<Ack>> {
    let (t, u) = (caller.token.clone(), uid.clone());
    let deleted = state.db(move |s| s.delete_key(&t, &u)).await?;
    audit::record(
        &caller.token,
        &uid,
        "delete-key",
        if deleted { "ok" } else { "absent" },
    );
    Ok(ack())
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<KeysResponse>> {
    let now = now_secs();
    let rows = state.db(move |s| s.keys(&caller.token, now)).await?;
    Ok(Json(KeysResponse {
        keys: rows.iter().map(|r| shares_summary(r, now)).collect(),
    }))
}

/// One key's summary, with its refresh state on this cell (`GET /v1/keys/{uid}`).
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    UidPath(uid): UidPath,
) -> ApiResult<Json<KeySummary>> {
    let now = now_secs();
    let (t, u) = (caller.token.clone(), uid.clone());
    let key = state
        .db(move |s| s.key_shares(&t, &u, now))
        .await?
        .ok_or_else(|| key_not_found(&uid))?;
    Ok(Json(shares_summary(&key, now)))
}

/// Renew session keys' leases (or, without `lease_secs`, make them permanent); the response lists the listed keys that are still live, so a
/// caller sees which ones the cell has already expired.
pub async fn lease(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<LeaseRequest>,
) -> ApiResult<Json<KeysResponse>> {
    for uid in &req.uids {
        check_uid("key uid", uid)?;
    }
    check_lease(req.lease_secs)?;
    let now = now_secs();
    let keys = state
        .db(move |s| {
            match req.lease_secs {
                Some(secs) => s.renew_leases(&caller.token, &req.uids, Some(secs), now)?,
                None => s.make_permanent(&caller.token, &req.uids, now)?,
            };
            let mut live = Vec::new();
            for uid in &req.uids {
                if let Some(row) = s.key_shares(&caller.token, uid, now)? {
                    live.push(row);
                }
            }
            Ok(live)
        })
        .await?;
    Ok(Json(KeysResponse {
        keys: keys.iter().map(|r| shares_summary(r, now)).collect(),
    }))
}
