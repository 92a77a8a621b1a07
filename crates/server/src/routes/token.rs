//! `GET /v1/token`, `POST /v1/token/init`, and the counted PIN check shared with login.

use axum::extract::State;
use axum::{Extension, Json};
use keyfrag_proto::ErrorCode;
use keyfrag_proto::objects::metadata_hash;
use keyfrag_proto::token::{InitPhase, InitTokenRequest, Pin, TokenStatus, UserKind};

use super::ApiJson;
use crate::audit;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::pin::{self, MAX_PIN_FAILURES};
use crate::state::AppState;
use crate::store::{PinAttempt, PinState};

/// PKCS#11 token labels are 32 bytes.
const MAX_LABEL_BYTES: usize = 32;

pub async fn status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<TokenStatus>> {
    Ok(Json(token_status(&state, &caller.token).await?))
}

pub(super) async fn token_status(state: &AppState, token: &str) -> ApiResult<TokenStatus> {
    let t = token.to_string();
    let (ts, meta) = state
        .db(move |s| Ok((s.token_state(&t)?, s.metadata(&t)?)))
        .await?;
    // A try is counted before it is verified, so while one is in flight count_low may show.
    let flags = |p: PinState| {
        let locked = p.failures >= MAX_PIN_FAILURES;
        (
            p.failures > 0 && !locked,
            p.failures + 1 == MAX_PIN_FAILURES,
            locked,
        )
    };
    let (user_low, user_final, user_locked) = flags(ts.user);
    let (so_low, so_final, so_locked) = flags(ts.so);
    Ok(TokenStatus {
        initialized: ts.initialized,
        label: ts.label,
        user_pin_initialized: ts.user.set,
        user_pin_count_low: user_low,
        user_pin_final_try: user_final,
        user_pin_locked: user_locked,
        so_pin_count_low: so_low,
        so_pin_final_try: so_final,
        so_pin_locked: so_locked,
        metadata_hash: metadata_hash(&meta.label, &meta.objects),
    })
}

/// Verify `pin` for `kind`, counting the try (10 failures lock) and resetting on success.
pub(super) async fn verify_pin_counted(
    state: &AppState,
    token: &str,
    kind: UserKind,
    pin: Pin,
) -> ApiResult<()> {
    let t = token.to_string();
    let attempt = state
        .db(move |s| s.begin_pin_attempt(&t, kind, MAX_PIN_FAILURES))
        .await?;
    let verifier = match attempt {
        PinAttempt::NotSet if kind == UserKind::So => {
            return Err(ApiError::new(
                ErrorCode::TokenNotInitialized,
                "the token is not initialised",
            ));
        }
        PinAttempt::NotSet => {
            return Err(ApiError::new(
                ErrorCode::UserPinNotInitialized,
                "the user PIN is not initialised",
            ));
        }
        PinAttempt::Locked => {
            return Err(ApiError::new(ErrorCode::PinLocked, "the PIN is locked"));
        }
        PinAttempt::Verify(v) => v,
    };
    let ok = tokio::task::spawn_blocking(move || pin::verify(&pin, &verifier))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    if !ok {
        return Err(ApiError::new(ErrorCode::PinIncorrect, "incorrect PIN"));
    }
    let t = token.to_string();
    state.db(move |s| s.pin_attempt_succeeded(&t, kind)).await
}

pub(super) async fn new_verifier(state: &AppState, pin: Pin) -> ApiResult<String> {
    pin::check_len(&pin)?;
    let m_kib = state.argon2_m_kib();
    tokio::task::spawn_blocking(move || pin::make_verifier(&pin, m_kib))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

/// C_InitToken in two phases: `check` proves the SO PIN on every cell before `apply` wipes
/// anything, so a wrong PIN on one cell cannot leave the cells half-initialised.
pub async fn init(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<InitTokenRequest>,
) -> ApiResult<Json<TokenStatus>> {
    if req.label.len() > MAX_LABEL_BYTES {
        return Err(ApiError::bad_request(format!(
            "label longer than {MAX_LABEL_BYTES} bytes"
        )));
    }
    let token = caller.token.clone();
    let t = token.clone();
    let initialized = state.db(move |s| s.token_state(&t)).await?.initialized;
    // First initialisation: any well-formed SO PIN becomes the SO PIN.
    let so_verifier = if initialized {
        verify_pin_counted(&state, &token, UserKind::So, req.so_pin.clone()).await?;
        None
    } else if req.phase == InitPhase::Check {
        pin::check_len(&req.so_pin)?;
        None
    } else {
        Some(new_verifier(&state, req.so_pin.clone()).await?)
    };
    if req.phase == InitPhase::Apply {
        let (t, label) = (token.clone(), req.label.clone());
        state
            .db(move |s| s.init_token(&t, initialized, so_verifier.as_deref(), &label))
            .await?;
        audit::record(&token, "token", "init", "ok");
    }
    Ok(Json(token_status(&state, &token).await?))
}
