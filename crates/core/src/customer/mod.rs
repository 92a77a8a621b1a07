//! The customer fragment (DESIGN "Customer fragment"): one 32-byte seed the customer holds in a
//! sealed file, from which every per-key customer share and the customer's party keys derive.
//!
//! - [`seed`]: the seed and its derivations (the share PRF, the relay key pairs).
//! - [`sealed`]: the file format: the seed sealed under Argon2id(user PIN) and, separately,
//!   under a recovery secret.
//! - [`recovery`]: the recovery secret, its generation and its printable form.

pub mod recovery;
pub mod sealed;
pub mod seed;

pub use recovery::RecoverySecret;
pub use sealed::{KdfParams, SealedFragment, UnsealError};
pub use seed::{CustomerSeed, SEED_BYTES};

/// The customer's party id in every customer-mode generation and on the card the cells pin
/// (`seed.party_keys().card(CUSTOMER_PARTY_ID)`): always the last party, after the cells.
pub const CUSTOMER_PARTY_ID: &str = "customer";
