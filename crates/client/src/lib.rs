//! keyfrag-client: configuration, pooled HTTPS connections to the fragment cells, and the
//! parallel fan-out every operation uses. Blocking API (the PKCS#11 module calls it from
//! application threads); an internal runtime per process, rebuilt after fork.

#![forbid(unsafe_code)]

pub mod admin;
mod cell;
pub mod cluster;
pub mod config;
pub mod customer_file;
mod direct;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
mod runtime;
mod tls;
mod wire;

pub use cluster::{Cluster, PrfKeyInfo};
pub use config::{CellConfig, Config, TokenConfig};
pub use error::{ClientError, ErrorKind, Result};
pub use keyfrag_proto::keys::KeySummary;
pub use keyfrag_proto::objects::{Attr, ObjectRecord};
pub use keyfrag_proto::token::{TokenStatus, UserKind};
