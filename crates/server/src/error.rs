//! The cell's two error types: `ServerError` for starting up (config, keys, TLS, storage) and
//! `ApiError` for requests, which becomes an `ErrorBody` with the HTTP status from one table.

use std::path::PathBuf;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keyfrag_proto::{ErrorBody, ErrorCode};

/// Why a cell could not start. Messages name the file involved and never carry key material.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{file}:{line}: {message}")]
    Config {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    File { file: PathBuf, message: String },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("storage: {0}")]
    Store(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

impl ServerError {
    pub(crate) fn file(file: &std::path::Path, message: impl Into<String>) -> Self {
        ServerError::File {
            file: file.to_path_buf(),
            message: message.into(),
        }
    }
}

/// The one table from wire code to HTTP status. The client maps codes (not statuses) to CKR
/// values, so the status only has to be sensible for proxies and humans.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::TokenNotInitialized => StatusCode::CONFLICT,
        ErrorCode::PinIncorrect => StatusCode::FORBIDDEN,
        ErrorCode::PinLocked => StatusCode::FORBIDDEN,
        ErrorCode::PinLenRange => StatusCode::BAD_REQUEST,
        ErrorCode::UserPinNotInitialized => StatusCode::CONFLICT,
        ErrorCode::UserNotLoggedIn => StatusCode::FORBIDDEN,
        ErrorCode::KeyNotFound => StatusCode::NOT_FOUND,
        ErrorCode::EpochUnknown => StatusCode::CONFLICT,
        ErrorCode::VersionUnsupported => StatusCode::BAD_REQUEST,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::RefreshPaused => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A request failure. The message goes to the client, so it must never hold secrets.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    /// Internal failures are logged in full here and reported to the client generically.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code;
        let body = ErrorBody {
            code,
            message: self.message,
        };
        let mut response = (status_of(code), Json(body)).into_response();
        // The metrics layer counts errors by code from this, without parsing the body.
        response.extensions_mut().insert(code);
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Backend(m) => ApiError::internal(format!("storage: {m}")),
        }
    }
}
