//! The sealed relay (DESIGN.md "Sealed relay", CRYPTO-NOTES §1.7).
//!
//! Cells never connect to each other: a protocol message from one party to another (a BGW
//! share, a refresh delta, the customer's Δ pieces) travels through the PKCS#11 module or the
//! CLI, which must see only ciphertext and cannot alter, redirect, replay or reorder anything
//! unnoticed. So every message is
//! - sealed with HPKE (RFC 9180, Base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//!   ChaCha20-Poly1305) to the receiver's pinned key, with the header as AAD;
//! - or, for public values, broadcast in the clear;
//! - and in both cases signed (Ed25519) by the sender over header and body, the header naming
//!   protocol, key, session, epoch, round, sender, receiver and format version.
//!
//! Base mode plus a signature rather than HPKE Auth mode: the sender is authenticated to
//! everyone (broadcasts too, and third parties checking a transcript), not only to the
//! receiver, and the same construction later carries a KEM without Auth mode (X-Wing).
//!
//! A receiver `open`s with the context it expects and its roster (the peers in its cluster
//! file); `ReplayGuard` refuses replays and rounds going backwards; `Transcript` hashes the
//! broadcasts so parties can echo what they saw and catch an equivocating relay.
//! Pure code: no I/O, randomness from the OS only for HPKE encapsulation and `generate`.

mod codec;
mod context;
mod envelope;
mod error;
mod guard;
mod party;

pub use codec::MAX_ID_LEN;
pub use context::{Context, Header, Kind, Protocol};
pub use envelope::{Envelope, broadcast, open, seal, verify_broadcast};
pub use error::{RelayError, RelayResult};
pub use guard::{ReplayGuard, Transcript};
pub use party::{CARD_VERSION, PartyCard, PartyKeys, Roster};

/// Format version of the envelope encoding; the first byte of every envelope and of the AAD.
pub const ENVELOPE_VERSION: u8 = 1;

/// The fixed HPKE suite of envelope version 1.
type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::ChaCha20Poly1305;
