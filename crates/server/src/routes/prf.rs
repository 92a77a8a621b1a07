//! PRF keys (docs/DPRF.md): `POST /v1/keys/{uid}/prf-create`, `.../prf-commitments`,
//! `.../prf-evaluate`. Deleting, leases and listing are the key routes (`keys.rs`): a PRF key
//! is a row of the keys table with kind "prf", its sealed `PrfRecord` as the share.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::{Extension, Json};
use keyfrag_core::dprf::{self, Element, PrfShare};
use keyfrag_proto::ErrorCode;
use keyfrag_proto::prf::{
    KIND_PRF, MAX_PRF_CELLS, PrfCommitmentsRequest, PrfCreateRequest, PrfCreateResponse,
    PrfEvaluateRequest, PrfEvaluateResponse, PrfKeyResponse,
};
use keyfrag_proto::token::UserKind;

use super::keys::{check_lease, key_not_found};
use super::partial::share_for;
use super::{ApiJson, UidPath, now_secs};
use crate::audit;
use crate::auth::{Caller, require_login};
use crate::error::{ApiError, ApiResult};
use crate::prf_record::PrfRecord;
use crate::sealing::SHARE_FORMAT;
use crate::state::AppState;
use crate::store::{KeyRow, KeyShares, PutKeyOutcome};

const FIRST_EPOCH: u64 = 1;

fn not_prf(uid: &str) -> ApiError {
    ApiError::bad_request(format!("key {uid} is not a PRF key"))
}

/// The live PRF key `uid`, or `key_not_found` / `not_prf`.
async fn prf_key(state: &AppState, token: &str, uid: &str) -> ApiResult<KeyShares> {
    let (t, u, now) = (token.to_owned(), uid.to_owned(), now_secs());
    let key = state
        .db(move |s| s.key_shares(&t, &u, now))
        .await?
        .ok_or_else(|| key_not_found(uid))?;
    if key.key.kind != KIND_PRF {
        return Err(not_prf(uid));
    }
    Ok(key)
}

fn open(state: &AppState, token: &str, key: &KeyRow) -> ApiResult<PrfRecord> {
    PrfRecord::open(
        state.master_key(),
        token,
        &key.uid,
        key.epoch,
        key.format,
        &key.sealed_share,
    )
    .map_err(ApiError::internal)
}

fn commitment_bytes(record: &PrfRecord) -> ApiResult<Vec<u8>> {
    record
        .share
        .commitment()
        .map(|k| k.to_bytes().to_vec())
        .ok_or_else(|| ApiError::internal("stored PRF share is zero"))
}

/// A list of commitments as `prf-commitments` accepts it: 1..=MAX_PRF_CELLS distinct
/// canonical non-identity elements.
pub(crate) fn parse_commitments(list: &[Vec<u8>]) -> ApiResult<Vec<Element>> {
    if list.is_empty() || list.len() > MAX_PRF_CELLS {
        return Err(ApiError::bad_request(format!(
            "a PRF key has 1..={MAX_PRF_CELLS} commitments"
        )));
    }
    let list = list
        .iter()
        .map(|k| Element::from_bytes(k))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::bad_request(format!("commitment rejected: {e}")))?;
    if list
        .iter()
        .map(|k| k.to_bytes())
        .collect::<HashSet<_>>()
        .len()
        != list.len()
    {
        return Err(ApiError::bad_request("commitments repeat"));
    }
    Ok(list)
}

/// A blinded element as `prf-evaluate` accepts it: canonical and not the identity.
pub(crate) fn parse_blinded(bytes: &[u8]) -> ApiResult<Element> {
    Element::from_bytes(bytes)
        .map_err(|e| ApiError::bad_request(format!("blinded element rejected: {e}")))
}

/// Sample this cell's share alone and answer its commitment. A retry while the list is not
/// yet fixed answers the same commitment; after that, or over another kind of key, conflict.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    UidPath(uid): UidPath,
    ApiJson(req): ApiJson<PrfCreateRequest>,
) -> ApiResult<Json<PrfCreateResponse>> {
    check_lease(req.lease_secs)?;
    let token = caller.token.clone();
    tokio::task::spawn_blocking(move || {
        let record = PrfRecord {
            share: PrfShare::random().map_err(ApiError::internal)?,
            commitments: Vec::new(),
        };
        let commitment = commitment_bytes(&record)?;
        let sealed = record
            .seal(state.master_key(), &token, &uid, FIRST_EPOCH)
            .map_err(ApiError::internal)?;
        let now = now_secs();
        let row = KeyRow {
            uid: uid.clone(),
            kind: KIND_PRF.into(),
            bits: 0,
            modulus: Vec::new(),
            public_exponent: commitment.clone(),
            epoch: FIRST_EPOCH,
            format: SHARE_FORMAT,
            sealed_share: sealed,
            lease_secs: req.lease_secs,
            expires_at: req.lease_secs.map(|l| now + l),
            pooled: false,
        };
        match state.store().put_key(&token, &row, now)? {
            PutKeyOutcome::Inserted => {
                audit::record(&token, &uid, "prf-create", "ok");
                Ok(Json(PrfCreateResponse {
                    commitment,
                    epoch: FIRST_EPOCH,
                }))
            }
            PutKeyOutcome::Exists(existing) => {
                let retry = existing.kind == KIND_PRF
                    && existing.epoch == FIRST_EPOCH
                    && open(&state, &token, &existing)?.commitments.is_empty();
                if !retry {
                    audit::record(&token, &uid, "prf-create", "conflict");
                    return Err(ApiError::conflict(format!("key {uid} exists")));
                }
                state.store().renew_leases(
                    &token,
                    std::slice::from_ref(&uid),
                    req.lease_secs,
                    now,
                )?;
                Ok(Json(PrfCreateResponse {
                    commitment: existing.public_exponent.clone(),
                    epoch: FIRST_EPOCH,
                }))
            }
        }
    })
    .await
    .map_err(ApiError::internal)?
}

/// Fix the key's list of commitments (once; the same list again succeeds).
pub async fn commitments(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    UidPath(uid): UidPath,
    ApiJson(req): ApiJson<PrfCommitmentsRequest>,
) -> ApiResult<Json<PrfKeyResponse>> {
    let list = parse_commitments(&req.commitments)?;
    let token = caller.token.clone();
    let key = prf_key(&state, &token, &uid).await?;
    tokio::task::spawn_blocking(move || {
        let mut record = open(&state, &token, &key.key)?;
        let hash = hex::encode(dprf::commitments_hash(&uid, &list));
        let answer = Json(PrfKeyResponse {
            commitments_hash: hash,
            epoch: key.key.epoch,
        });
        if !record.commitments.is_empty() {
            return if record.commitments == list {
                Ok(answer)
            } else {
                audit::record(&token, &uid, "prf-commitments", "conflict");
                Err(ApiError::conflict(format!(
                    "key {uid} has other commitments"
                )))
            };
        }
        record.commitments = list;
        if record.index().is_none() {
            return Err(ApiError::bad_request(
                "the list must hold this cell's commitment exactly once",
            ));
        }
        let sealed = record
            .seal(state.master_key(), &token, &uid, key.key.epoch)
            .map_err(ApiError::internal)?;
        let replaced = state.store().replace_share(
            &token,
            &uid,
            key.key.epoch,
            &key.key.sealed_share,
            &sealed,
        )?;
        if !replaced {
            return Err(ApiError::conflict(format!(
                "key {uid} changed while its commitments were fixed"
            )));
        }
        audit::record(&token, &uid, "prf-commitments", "ok");
        Ok(answer)
    })
    .await
    .map_err(ApiError::internal)?
}

/// Zᵢ = kᵢ·B with its proof, under the epoch the request names (as `rsa-partial`). The
/// blinded element tells the cell nothing; it is never logged.
pub async fn evaluate(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    UidPath(uid): UidPath,
    ApiJson(req): ApiJson<PrfEvaluateRequest>,
) -> ApiResult<Json<PrfEvaluateResponse>> {
    let token = caller.token.clone();
    require_login(&state, &caller, &headers, Some(UserKind::User)).await?;
    let blinded = parse_blinded(&req.blinded).inspect_err(|_| {
        audit::record(&token, &uid, "prf-evaluate", "bad-input");
    })?;
    let key = prf_key(&state, &token, &uid).await?;
    let (epoch, format, sealed) = share_for(&key, req.epoch)?;
    let now = now_secs();
    let renew = key
        .key
        .lease_secs
        .zip(key.key.expires_at)
        .is_some_and(|(lease, expires)| expires.saturating_sub(now) < lease / 2);
    let (st, t, u) = (state.clone(), token.clone(), uid.clone());
    let (evaluated, proof, index, commitments) = tokio::task::spawn_blocking(move || {
        let record = PrfRecord::open(st.master_key(), &t, &u, epoch, format, &sealed)
            .map_err(ApiError::internal)?;
        let index = record.index().ok_or_else(|| {
            ApiError::new(
                ErrorCode::Conflict,
                format!("PRF key {u} has no commitments fixed at epoch {epoch}"),
            )
        })?;
        let (z, proof) = dprf::evaluate(&record.share, &blinded).map_err(ApiError::internal)?;
        let list = record.commitments.iter().map(|k| k.to_bytes().to_vec());
        Ok::<_, ApiError>((z, proof, index, list.collect::<Vec<_>>()))
    })
    .await
    .map_err(ApiError::internal)??;
    if renew {
        let (t, u) = (token.clone(), uid.clone());
        state
            .db(move |s| s.renew_leases(&t, &[u], None, now))
            .await?;
    }
    audit::record(&token, &uid, "prf-evaluate", "ok");
    Ok(Json(PrfEvaluateResponse {
        evaluated: evaluated.to_bytes().to_vec(),
        proof: proof.to_bytes().to_vec(),
        index: index as u32,
        commitments,
        epoch,
        current_epoch: key.key.epoch,
        previous_epoch: key.previous.as_ref().map(|p| p.epoch),
    }))
}
