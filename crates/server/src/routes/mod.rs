//! The HTTP surface, one file per route family (see `keyfrag_proto` for the contract).

mod admin;
pub(crate) mod admin_customer;
mod admin_master_key;
mod admin_tokens;
mod backup;
mod health;
mod info;
pub(crate) mod keygen;
pub(crate) mod keys;
mod login;
pub(crate) mod objects;
mod partial;
mod pool;
pub(crate) mod prf;
mod refresh;
mod token;
mod wire;

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Path, Request, State,
};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use keyfrag_proto::{ErrorCode, MAX_BODY_BYTES, REQUEST_ID_HEADER};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::auth::require_access_key;
use crate::error::ApiError;
use crate::state::AppState;

/// The cell's router. Layers run outermost first: request log, body limit, metrics, access
/// key; `/healthz` and `/readyz` skip the access key.
pub fn app(state: AppState) -> Router {
    let probes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    Router::new()
        .route("/v1/info", get(info::info))
        .route("/v1/token", get(token::status))
        .route("/v1/token/init", post(token::init))
        .route("/v1/login", post(login::login))
        .route("/v1/logout", post(login::logout))
        .route("/v1/pin/init", post(login::init_pin))
        .route("/v1/pin/set", post(login::set_pin))
        .route("/v1/objects", get(objects::list))
        .route("/v1/objects/stage", post(objects::stage))
        .route("/v1/objects/commit", post(objects::commit))
        .route("/v1/objects/abort", post(objects::abort))
        .route("/v1/objects/pending", get(objects::pending))
        .route("/v1/objects/status", post(objects::status))
        .route("/v1/keys", get(keys::list))
        .route("/v1/keys/lease", post(keys::lease))
        .route("/v1/keys/pool", get(pool::list))
        .route(
            "/v1/keys/{uid}",
            put(keys::put).get(keys::get).delete(keys::delete),
        )
        .route("/v1/keys/{uid}/rsa-partial", post(partial::rsa_partial))
        .route("/v1/keys/{uid}/claim", post(pool::claim))
        .route("/v1/keys/{uid}/prf-create", post(prf::create))
        .route("/v1/keys/{uid}/prf-commitments", post(prf::commitments))
        .route("/v1/keys/{uid}/prf-evaluate", post(prf::evaluate))
        .route("/v1/keys/{uid}/refresh/deal", post(refresh::deal))
        .route("/v1/keys/{uid}/refresh/prepare", post(refresh::prepare))
        .route("/v1/keys/{uid}/refresh/check", post(refresh::check))
        .route("/v1/keys/{uid}/refresh/commit", post(refresh::commit))
        .route("/v1/keys/{uid}/refresh/finalize", post(refresh::finalize))
        .route("/v1/keys/{uid}/refresh/abort", post(refresh::abort))
        .merge(keygen_routes())
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::bad_request("method not allowed on this route")
        })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_access_key,
        ))
        .merge(probes)
        .merge(admin::router(state.clone()))
        .layer(middleware::from_fn_with_state(state.clone(), count_request))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(log_request))
        .layer(middleware::from_fn(wire::stamp))
        .with_state(state)
}

/// Key generation carries whole rounds of sealed BGW shares, far over the JSON limit; the
/// inner body limit overrides the router-wide one for these routes only.
fn keygen_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/keygen/start", post(keygen::start))
        .route("/v1/keygen/{session}/step", post(keygen::step))
        .route("/v1/keygen/{session}/commit", post(keygen::commit))
        .route("/v1/keygen/{session}/abort", post(keygen::abort))
        .layer(DefaultBodyLimit::max(
            keyfrag_proto::keygen::MAX_KEYGEN_BODY_BYTES,
        ))
}

/// Logs method, path, status and time under the caller's request id; bodies and headers are
/// never logged (they hold PINs, access keys, login tokens and blinded inputs).
async fn log_request(mut req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(64).collect::<String>())
        .unwrap_or_else(|| "-".into());
    let span = tracing::debug_span!("request", id = %request_id);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = Instant::now();
    req.extensions_mut().insert(Arrived(started));
    let response = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            %method,
            %path,
            status = response.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "request"
        );
    });
    response
}

/// Counts the request for the metrics listener. `Router::layer` runs after routing, so the
/// matched template (never the uid in the path) is known here.
async fn count_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let started = Instant::now();
    let response = next.run(req).await;
    let metrics = state.metrics();
    metrics.record_request(
        route.as_ref().map(MatchedPath::as_str),
        response.status().as_u16(),
        started.elapsed(),
    );
    if let Some(code) = response.extensions().get::<ErrorCode>() {
        metrics.record_error(*code);
    }
    response
}

/// When the request entered the router (TLS and HTTP headers already parsed, before the
/// access-key check and the body): where a route's own measured wall time starts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Arrived(pub Instant);

/// A JSON body whose failures are `ErrorBody`s: 413 `too_large` over the limit, otherwise
/// `bad_request`. The content type is not insisted on.
pub struct ApiJson<T>(pub T);

/// The whole request body; over `limit` (enforced by the route's body-limit layer) is
/// `too_large`, anything else unreadable is `bad_request`.
pub(crate) async fn read_body<S: Send + Sync>(
    req: Request,
    state: &S,
    limit: usize,
) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::TooLarge,
                format!("request body over {limit} bytes"),
            )
        } else {
            ApiError::bad_request("cannot read request body")
        }
    })
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state, MAX_BODY_BYTES).await?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::bad_request(describe_json_error(&e)))
    }
}

/// serde's messages can quote the offending input (a PIN, a share), so only the ones that name
/// a field are passed on; the rest are reduced to a position.
pub(crate) fn describe_json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.starts_with("missing field") || text.starts_with("unknown field") {
        let head = text.split(" at line").next().unwrap_or(&text);
        return format!("malformed request body: {head}");
    }
    format!(
        "malformed request body at line {} column {}",
        e.line(),
        e.column()
    )
}

/// A `{uid}` path segment that is a key uid: 32 lowercase hex digits.
pub struct UidPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for UidPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(uid) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_request("bad path"))?;
        check_uid("key uid", &uid)?;
        Ok(UidPath(uid))
    }
}

/// Ids, uids and txids are 128-bit random values as 32 lowercase hex digits; one spelling per
/// value keeps the store free of aliases.
pub fn check_uid(what: &str, value: &str) -> Result<(), ApiError> {
    let ok = value.len() == 32
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{what} must be 32 lowercase hex digits"
        )))
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The empty success body.
pub fn ack() -> axum::Json<keyfrag_proto::token::Ack> {
    axum::Json(keyfrag_proto::token::Ack {})
}
