//! keyfrag-core: the math and protocols, as pure functions and state machines (no I/O).
//!
//! RSA keys exist only as additive integer shares d = Σ dᵢ (DESIGN.md, CRYPTO-NOTES §2):
//! a cell computes `rsa_partial` with its share; the module blinds the input
//! (`rsa_combine::blind`), multiplies the partials, corrects, unblinds and verifies
//! (`rsa_combine::combine`). Padding (RFC 8017) is the module's and lives in `padding`.

// The one exception (docs/UNSAFE.md) is allowed at its call site in modexp/window.rs.
#![deny(unsafe_code)]

mod bigint;
pub mod blinding;
pub mod customer;
pub mod dprf;
pub mod error;
pub mod hash;
pub mod keygen;
mod modexp;
pub mod padding;
pub mod paillier;
pub mod random;
pub mod refresh;
pub mod relay;
pub mod rsa_combine;
pub mod rsa_partial;
pub mod rsa_public;
pub mod rsa_share;
pub mod secret;
mod signed;

pub use error::{Error, Result};
