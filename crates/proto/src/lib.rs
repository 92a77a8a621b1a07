//! Wire types shared by keyfrag cells and clients.
//!
//! Every route lives under `/v1`, carries `Authorization: Bearer <access key>` and an
//! `x-request-id`; private-key routes also carry the login token in `x-keyfrag-login`.
//! One module per endpoint family, request and response side by side.

#![forbid(unsafe_code)]

pub mod admin;
pub mod b64;
pub mod backup;
pub mod error;
pub mod info;
pub mod keygen;
pub mod keys;
pub mod objects;
pub mod prf;
pub mod refresh;
pub mod token;

/// Version of the JSON wire format spoken by this build.
pub const WIRE_VERSION: u32 = 1;

/// Response header on every cell answer: the wire version the cell speaks. Clients refuse a
/// cell that names another version (an answer without it is from a version-1 cell).
pub const WIRE_HEADER: &str = "x-keyfrag-wire";
/// Header carrying the login token a cell issued at C_Login.
pub const LOGIN_HEADER: &str = "x-keyfrag-login";
/// Header carrying the caller's request id (idempotency and log correlation).
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Largest request body a cell accepts.
pub const MAX_BODY_BYTES: usize = 1 << 20;

pub use error::{ErrorBody, ErrorCode};
