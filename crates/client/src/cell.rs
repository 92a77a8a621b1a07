//! One cell's connection: pooled keep-alive HTTPS, bounded timeouts, retries only for
//! idempotent requests, and the one table mapping cell error codes to client error kinds.

use std::time::Duration;

use keyfrag_proto::keygen::OCTET_STREAM;
use keyfrag_proto::{ErrorBody, ErrorCode, LOGIN_HEADER, REQUEST_ID_HEADER};
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::config::{CellConfig, TokenConfig};
use crate::direct::{Direct, DirectError, InFlight};
use crate::error::{ClientError, ErrorKind, Result};
use crate::tls;

pub(crate) struct Cell {
    pub(crate) name: String,
    base: String,
    access_key: Zeroizing<String>,
    http: reqwest::Client,
    /// The blocking path for the latency-critical fan-out (direct.rs).
    direct: Option<Direct>,
    retries: u32,
}

/// What a request needs beyond method and path.
pub(crate) struct Call<'a, B: Serialize> {
    pub(crate) method: Method,
    pub(crate) path: &'a str,
    pub(crate) body: Option<&'a B>,
    pub(crate) login: Option<&'a str>,
    /// Safe to send again after a transport failure.
    pub(crate) idempotent: bool,
}

impl Cell {
    /// Reads the access key and CA; must be called inside the runtime that will drive it.
    pub(crate) fn new(config: &CellConfig, token: &TokenConfig) -> Result<Cell> {
        let key = std::fs::read_to_string(&config.access_key_file).map_err(|e| {
            ClientError::new(
                ErrorKind::Config,
                format!(
                    "cell {}: cannot read access key file {}: {e}",
                    config.name,
                    config.access_key_file.display()
                ),
            )
        })?;
        let access_key = Zeroizing::new(key.trim().to_string());
        let tls = tls::client_config(&config.ca)?;
        let timeout = Duration::from_millis(token.timeout_ms);
        let connect_timeout = timeout.min(Duration::from_millis(1500));
        let direct = Direct::new(
            &config.url,
            std::sync::Arc::new(tls.clone()),
            timeout,
            connect_timeout,
        );
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .map_err(|e| {
                ClientError::new(
                    ErrorKind::Config,
                    format!("cell {}: HTTP client setup: {e}", config.name),
                )
            })?;
        Ok(Cell {
            name: config.name.clone(),
            base: config.url.trim_end_matches('/').to_string(),
            access_key,
            http,
            direct,
            retries: token.retries,
        })
    }

    pub(crate) async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        call: Call<'_, B>,
    ) -> Result<R> {
        let request_id = keyfrag_core::random::uid_hex().unwrap_or_default();
        let attempts = if call.idempotent { 1 + self.retries } else { 1 };
        let mut last = None;
        for attempt in 0..attempts {
            match self.send(&call, &request_id).await {
                Ok(r) => return Ok(r),
                Err(Failure::Transport(msg)) => {
                    tracing::warn!(
                        cell = %self.name, path = call.path, attempt, request_id = %request_id,
                        "cell unreachable: {msg}"
                    );
                    last = Some(msg);
                }
                Err(Failure::Answer(e)) => return Err(e),
            }
        }
        Err(ClientError::new(
            ErrorKind::Device,
            format!(
                "cell {} unreachable ({}): {}",
                self.name,
                call.path,
                last.unwrap_or_default()
            ),
        ))
    }

    async fn send<B: Serialize, R: DeserializeOwned>(
        &self,
        call: &Call<'_, B>,
        request_id: &str,
    ) -> std::result::Result<R, Failure> {
        let url = format!("{}/v1/{}", self.base, call.path);
        let mut req = self
            .http
            .request(call.method.clone(), url)
            .bearer_auth(self.access_key.as_str())
            .header(REQUEST_ID_HEADER, request_id);
        if let Some(login) = call.login {
            req = req.header(LOGIN_HEADER, login);
        }
        if let Some(body) = call.body {
            req = req.json(body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::Transport(describe(&e)))?;
        crate::wire::check(&self.name, resp.headers()).map_err(Failure::Answer)?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Failure::Transport(describe(&e)))?;
        self.answer(status, &bytes, call.path, request_id)
    }

    /// A complete answer: the decoded body, or the cell's error.
    fn answer<R: DeserializeOwned>(
        &self,
        status: reqwest::StatusCode,
        bytes: &[u8],
        path: &str,
        request_id: &str,
    ) -> std::result::Result<R, Failure> {
        if status.is_success() {
            return serde_json::from_slice(bytes).map_err(|e| {
                Failure::Answer(ClientError::new(
                    ErrorKind::Device,
                    format!("cell {} sent a malformed answer to {path}: {e}", self.name),
                ))
            });
        }
        Err(Failure::Answer(
            self.error_answer(status, bytes, path, request_id),
        ))
    }

    /// Whether `start` can take the blocking path (an https URL it can serve).
    pub(crate) fn has_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Writes a JSON POST on the blocking path (direct.rs) and returns at once; `finish`
    /// reads the answer. Needs `has_direct`.
    pub(crate) fn start<'a, B: Serialize>(&'a self, call: &Call<'a, B>) -> Pending<'a> {
        let request_id = keyfrag_core::random::uid_hex().unwrap_or_default();
        let body = Zeroizing::new(match call.body {
            Some(b) => serde_json::to_vec(b).unwrap_or_default(),
            None => b"{}".to_vec(),
        });
        let flight = match &self.direct {
            Some(d) => d
                .send(
                    call.path,
                    &body,
                    self.access_key.as_str(),
                    call.login,
                    &request_id,
                )
                .map_err(|e| direct_failure(&self.name, call.path, e)),
            None => Err(Failure::Transport("no blocking path to this cell".into())),
        };
        Pending {
            cell: self,
            path: call.path,
            login: call.login,
            idempotent: call.idempotent,
            body,
            request_id,
            flight,
        }
    }

    /// One blocking exchange from scratch (a retry).
    fn exchange<R: DeserializeOwned>(
        &self,
        direct: &Direct,
        pending: &Pending<'_>,
    ) -> std::result::Result<R, Failure> {
        let answer = direct
            .send(
                pending.path,
                &pending.body,
                self.access_key.as_str(),
                pending.login,
                &pending.request_id,
            )
            .and_then(InFlight::finish)
            .map_err(|e| direct_failure(&self.name, pending.path, e))?;
        self.direct_answer(answer, pending)
    }

    fn direct_answer<R: DeserializeOwned>(
        &self,
        answer: crate::direct::Answer,
        pending: &Pending<'_>,
    ) -> std::result::Result<R, Failure> {
        crate::wire::check_value(&self.name, answer.wire.as_deref()).map_err(Failure::Answer)?;
        let status = reqwest::StatusCode::from_u16(answer.status)
            .map_err(|_| Failure::Transport(format!("HTTP status {}", answer.status)))?;
        self.answer(status, &answer.body, pending.path, &pending.request_id)
    }

    /// A cell's error answer as a client error (the body is an `ErrorBody` when the cell
    /// wrote it, anything else when a proxy did).
    fn error_answer(
        &self,
        status: reqwest::StatusCode,
        bytes: &[u8],
        path: &str,
        request_id: &str,
    ) -> ClientError {
        let err = match serde_json::from_slice::<ErrorBody>(bytes) {
            Ok(body) => ClientError::new(
                kind_of(body.code),
                format!("cell {}: {} ({})", self.name, body.message, path),
            ),
            Err(_) => ClientError::new(
                ErrorKind::Device,
                format!("cell {} answered HTTP {status} to {}", self.name, path),
            ),
        };
        if matches!(err.kind, ErrorKind::Device) {
            tracing::warn!(cell = %self.name, request_id, "{}", err.message);
        }
        err
    }

    /// One POST whose answer is a binary body (key generation rounds), sent once (a step is
    /// not idempotent: the cell refuses a replayed round) with its own timeout, since a
    /// round's compute can take seconds.
    pub(crate) async fn post_binary(
        &self,
        path: &str,
        body: Body,
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        let request_id = keyfrag_core::random::uid_hex().unwrap_or_default();
        let url = format!("{}/v1/{}", self.base, path);
        let req = self
            .http
            .post(url)
            .bearer_auth(self.access_key.as_str())
            .header(REQUEST_ID_HEADER, &request_id)
            .timeout(timeout);
        let req = match body {
            Body::Json(b) => req.header(CONTENT_TYPE, "application/json").body(b),
            Body::Binary(b) => req.header(CONTENT_TYPE, OCTET_STREAM).body(b),
        };
        let unreachable = |e: reqwest::Error| {
            let msg = format!("cell {} unreachable ({path}): {}", self.name, describe(&e));
            tracing::warn!(cell = %self.name, request_id = %request_id, "{msg}");
            ClientError::new(ErrorKind::Device, msg)
        };
        let resp = req.send().await.map_err(unreachable)?;
        crate::wire::check(&self.name, resp.headers())?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            Ok(bytes.to_vec())
        } else {
            Err(self.error_answer(status, &bytes, path, &request_id))
        }
    }
}

/// A request written by `Cell::start`, its answer not yet read.
pub(crate) struct Pending<'a> {
    cell: &'a Cell,
    path: &'a str,
    login: Option<&'a str>,
    idempotent: bool,
    body: Zeroizing<Vec<u8>>,
    request_id: String,
    flight: std::result::Result<InFlight<'a>, Failure>,
}

impl Pending<'_> {
    /// The answer, with the async path's retries (idempotent requests only) and errors.
    pub(crate) fn finish<R: DeserializeOwned>(mut self) -> Result<R> {
        let cell = self.cell;
        let taken = std::mem::replace(&mut self.flight, Err(Failure::Transport(String::new())));
        let mut result = match taken {
            Ok(flight) => flight
                .finish()
                .map_err(|e| direct_failure(&cell.name, self.path, e))
                .and_then(|a| cell.direct_answer(a, &self)),
            Err(f) => Err(f),
        };
        let retries = if self.idempotent { cell.retries } else { 0 };
        let mut attempt = 0;
        loop {
            match result {
                Ok(r) => return Ok(r),
                Err(Failure::Answer(e)) => return Err(e),
                Err(Failure::Transport(msg)) => {
                    tracing::warn!(
                        cell = %cell.name, path = self.path, attempt,
                        request_id = %self.request_id, "cell unreachable: {msg}"
                    );
                    let direct = match &cell.direct {
                        Some(d) if attempt < retries => d,
                        _ => {
                            return Err(ClientError::new(
                                ErrorKind::Device,
                                format!("cell {} unreachable ({}): {msg}", cell.name, self.path),
                            ));
                        }
                    };
                    attempt += 1;
                    result = cell.exchange(direct, &self);
                }
            }
        }
    }
}

/// A request body for `post_binary`.
pub(crate) enum Body {
    Json(Vec<u8>),
    Binary(Vec<u8>),
}

/// A blocking-path failure as the async path's: transport failures may be retried; a
/// refused request is final.
fn direct_failure(cell: &str, path: &str, e: DirectError) -> Failure {
    match e {
        DirectError::Transport(m) => Failure::Transport(m),
        DirectError::Refused(why) => Failure::Answer(ClientError::new(
            ErrorKind::Device,
            format!("request to cell {cell} not sent ({path:?}): {why}"),
        )),
    }
}

enum Failure {
    /// No answer: worth retrying an idempotent request.
    Transport(String),
    /// The cell answered; final.
    Answer(ClientError),
}

fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// The one table from cell error codes to client error kinds.
fn kind_of(code: ErrorCode) -> ErrorKind {
    match code {
        ErrorCode::PinIncorrect => ErrorKind::PinIncorrect,
        ErrorCode::PinLocked => ErrorKind::PinLocked,
        ErrorCode::PinLenRange => ErrorKind::PinLenRange,
        ErrorCode::UserPinNotInitialized => ErrorKind::UserPinNotInitialized,
        ErrorCode::TokenNotInitialized => ErrorKind::TokenNotInitialized,
        ErrorCode::UserNotLoggedIn => ErrorKind::UserNotLoggedIn,
        ErrorCode::KeyNotFound => ErrorKind::KeyNotFound,
        ErrorCode::BadRequest | ErrorCode::Conflict | ErrorCode::NotFound | ErrorCode::TooLarge => {
            ErrorKind::Refused
        }
        ErrorCode::EpochUnknown => ErrorKind::EpochMoved,
        ErrorCode::RefreshPaused => ErrorKind::RefreshPaused,
        ErrorCode::Unauthorized
        | ErrorCode::RateLimited
        | ErrorCode::VersionUnsupported
        | ErrorCode::Internal => ErrorKind::Device,
    }
}
