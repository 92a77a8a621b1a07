//! The module's side of a private-key operation: blind, combine partials, correct, unblind,
//! verify (CRYPTO-NOTES §2.1–2.2).
//!
//! x' = x·ρ^e (cells never see x); w = Π x'^(2dᵢ) = x'^(2d); y' = w^((e+1)/2)·x'⁻¹ = x'^d;
//! y = y'·ρ⁻¹ = x^d; and y^e ≡ x is checked before anything is returned.

use crate::Result;
use crate::rsa_public::RsaPublic;
use crate::secret::SecretBytes;

/// A blinded input ready to send to the cells, with the state needed to finish.
pub struct Blinded {
    /// x' = x·ρ^e mod N, big-endian, exactly k bytes: what the cells receive.
    pub input: Vec<u8>,
    // private: x, ρ⁻¹ (zeroized on drop)
}

impl std::fmt::Debug for Blinded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blinded([redacted])")
    }
}

/// Blind the message representative x (big-endian, < N) with a fresh random ρ ∈ Z_N^*.
/// Errors: `DataTooLarge` if x ≥ N.
pub fn blind(key: &RsaPublic, x: &[u8]) -> Result<Blinded> {
    let _ = (key, x);
    todo!()
}

/// Combine the parties' partials into x^d (exactly k bytes) and verify it.
/// Errors: `VerifyFailed` if any partial was wrong (so the result is never returned);
/// `InvalidInput` if a partial is malformed (≥ N or wrong length).
pub fn combine(key: &RsaPublic, blinded: &Blinded, partials: &[Vec<u8>]) -> Result<SecretBytes> {
    let _ = (key, blinded, partials);
    todo!()
}
