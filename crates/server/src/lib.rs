//! keyfrag-server: a fragment cell. It stores, per token, public object metadata and this
//! cell's share of every key (sealed under its master key), checks PINs and issues login
//! tokens, and computes partial results — never seeing a whole key (DESIGN.md).
//!
//! `start` runs a cell in-process (tests, `keyfrag dev up`); `app` gives the router alone for
//! socket-less tests; the `keyfrag-server` binary is a thin wrapper over both.

#![forbid(unsafe_code)]

pub mod access_map;
pub mod admin_auth;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod card;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod init;
pub mod keygen;
pub mod maintenance;
pub mod metrics;
pub mod metrics_http;
pub mod own_admin;
pub mod pin;
pub mod prf_record;
pub mod rate_limit;
pub mod refresh;
pub mod relay_identity;
pub mod rotation;
pub mod routes;
pub mod sealing;
pub mod server;
pub mod state;
pub mod store;
pub mod tls;

pub use config::{CellConfig, CellToken};
pub use error::ServerError;
pub use routes::app;
pub use server::{RunningCell, start};
pub use state::AppState;
