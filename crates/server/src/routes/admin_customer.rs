//! `POST` and `GET /v1/admin/tokens/{label}/customer-card`: the operator pins the customer's
//! relay card on a token (issue 4). From then on the token's keys are generated only in
//! customer mode, with exactly this card as the last party (docs/THREAT-MODEL.md).
//!
//! A pin is permanent: the same card again changes nothing, another card is refused (409), so
//! a compromised operator link cannot silently swap the customer for a party it controls.

use axum::Json;
use axum::extract::{Path, State};
use keyfrag_core::customer::CUSTOMER_PARTY_ID;
use keyfrag_core::relay::PartyCard;
use keyfrag_proto::admin::{Changed, CustomerCard};

use super::{ApiJson, now_secs};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

async fn known(state: &AppState, token: &str) -> ApiResult<()> {
    if state.knows_token(token).await? {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "no token {token:?} on this cell"
        )))
    }
}

/// The pinned card of `token`, parsed (None if there is none).
pub(crate) async fn pinned_card(state: &AppState, token: &str) -> ApiResult<Option<PartyCard>> {
    let t = token.to_owned();
    let Some(bytes) = state.db(move |s| s.customer_card(&t)).await? else {
        return Ok(None);
    };
    PartyCard::from_bytes(&bytes)
        .map(Some)
        .map_err(|e| ApiError::internal(format!("stored customer card of {token}: {e}")))
}

fn answer(card: &PartyCard) -> CustomerCard {
    CustomerCard {
        card: hex::encode(card.to_bytes()),
        fingerprint: card.fingerprint(),
    }
}

pub async fn pin(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ApiJson(req): ApiJson<CustomerCard>,
) -> ApiResult<Json<Changed>> {
    known(&state, &token).await?;
    let bytes = hex::decode(req.card.trim())
        .map_err(|_| ApiError::bad_request("customer card must be hex"))?;
    let card = PartyCard::from_bytes(&bytes)
        .map_err(|e| ApiError::bad_request(format!("customer card: {e}")))?;
    if card.id() != CUSTOMER_PARTY_ID {
        return Err(ApiError::bad_request(format!(
            "a customer card names party {CUSTOMER_PARTY_ID:?}, this one {:?}",
            card.id()
        )));
    }
    // The fingerprint is what the operator compared out of band: it must be this card's.
    if !card
        .fingerprint()
        .eq_ignore_ascii_case(req.fingerprint.trim())
    {
        return Err(ApiError::bad_request(
            "the fingerprint does not match the customer card",
        ));
    }
    let (t, canonical, now) = (token.clone(), card.to_bytes(), now_secs());
    let changed = state
        .db(move |s| s.pin_customer_card(&t, &canonical, now))
        .await?;
    if changed {
        tracing::info!(
            target: "audit", token = %token, subject = %card.fingerprint(),
            operation = "customer-card-pin", result = "ok"
        );
    }
    Ok(Json(Changed { changed }))
}

pub async fn get(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<Json<CustomerCard>> {
    known(&state, &token).await?;
    match pinned_card(&state, &token).await? {
        Some(card) => Ok(Json(answer(&card))),
        None => Err(ApiError::not_found(format!(
            "token {token:?} has no customer card pinned"
        ))),
    }
}
