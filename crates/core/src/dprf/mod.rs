//! A distributed PRF on ristretto255: RFC 9497 (suite ristretto255-SHA512) with the key split
//! additively, k = Σ kᵢ mod ℓ (CRYPTO-NOTES §3, docs/DPRF.md).
//!
//! Each cell samples its share kᵢ alone (`PrfShare::random`) and publishes Kᵢ = kᵢ·G. To
//! evaluate F_k(x), the module blinds x (`Blinding::new`: B = r·H(x)), every cell returns
//! Zᵢ = kᵢ·B with a DLEQ proof against Kᵢ (`cell::evaluate`), the module verifies every proof
//! (`proof::verify`), then sums, unblinds and finalizes (`Blinding::finalize`). The output is
//! exactly RFC 9497's VOPRF output for the key k.
//!
//! Where this departs from RFC 9497, on purpose:
//! - Mode: we use the VOPRF mode's context string (mode 0x01) for HashToGroup, HashToScalar
//!   and the proofs, so each cell is, byte for byte, an RFC 9497 VOPRF server for its own kᵢ
//!   (the RFC's appendix A.1.2 vectors check our cell and module code). CRYPTO-NOTES §3.1
//!   names mode 0x00; a 0x00 context would make the outputs match the OPRF mode's instead, and
//!   proofs under it would match no published vector. The choice is fixed by the outputs:
//!   changing it changes every derived key.
//! - Distribution: the server's key is never one scalar. The module verifies n proofs, each
//!   against one cell's commitment, and finalizes Σ Zᵢ. Since Σ kᵢ·B = k·B, the result is the
//!   RFC's Finalize for k, which `voprf`'s VoprfServer::evaluate with k confirms in the tests.
//! - Customer share: with a customer fragment c, the module adds c·B itself, so k = c + Σ kᵢ.
//!   No proof is needed for the module's own term.
//! - Batch size is always one; proofs use the RFC's ComputeComposites with m = 1.

mod cell;
mod client;
mod group;
mod proof;
pub mod refresh;
mod share;
mod xmd;

pub use cell::evaluate;
pub use client::{Blinding, MAX_INPUT_LEN, OUTPUT_LEN, evaluate_whole};
pub use group::{ELEMENT_LEN, Element, SCALAR_LEN};
pub use proof::{PROOF_LEN, Proof, verify};
pub use share::PrfShare;

use sha2::{Digest, Sha256};

const COMMITMENTS_DOMAIN: &[u8] = b"keyfrag/prf/commitments/v1";

/// SHA-256 naming a key's commitments Kᵢ, in the order they were fixed at creation: what
/// every cell reports and the module compares (docs/DPRF.md).
pub fn commitments_hash(uid: &str, commitments: &[Element]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(COMMITMENTS_DOMAIN);
    h.update((uid.len() as u64).to_be_bytes());
    h.update(uid.as_bytes());
    h.update((commitments.len() as u64).to_be_bytes());
    for k in commitments {
        h.update(k.to_bytes());
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests;
