//! keyfrag PKCS#11 module: a virtual HSM whose RSA private keys exist only as additive shares
//! on independent cells. The module blinds each private-key input, asks every cell for its
//! partial, combines, verifies, and returns a standard RSA signature or plaintext.
//!
//! Layout (see /work/shared/STYLE.md, "The PKCS#11 edge"):
//! - `functions`: the function tables and the three exported symbols;
//! - `export`: the macro that turns inner functions into C entry points;
//! - `fns/`: one file per chapter of the specification;
//! - `mechanism/`: the registry and one file per mechanism family;
//! - `object/`: typed attributes, the policy table, the object store;
//! - `state`: the global state, slots, sessions;
//! - `log_gate`: keeps logging from panicking while a thread is torn down;
//! - `ffi`: every `unsafe` block.

// Exported C symbols keep their PKCS#11 names.
#![allow(non_snake_case)]

mod customer;
mod data_key;
mod error;
mod export;
mod ffi;
mod fns;
mod functions;
#[doc(hidden)]
pub mod fuzzing;
mod log_gate;
mod mechanism;
mod object;
mod state;

pub use functions::{C_GetFunctionList, C_GetInterface, C_GetInterfaceList};
