//! PKCS#1 v1.5: EMSA (signatures) and EME (encryption; decryption with implicit rejection).

use crate::Result;
use crate::secret::SecretBytes;

/// EMSA-PKCS1-v1_5: 00 01 FF..FF 00 ‖ t, k bytes; t is a DigestInfo (or raw data for
/// CKM_RSA_PKCS). Errors: `InvalidInput` if t is longer than k − 11.
pub fn sign_pad(t: &[u8], k: usize) -> Result<Vec<u8>> {
    let _ = (t, k);
    todo!()
}

/// Whether `em` (k bytes, from a public-key operation) is exactly sign_pad(t, k).
pub fn verify_pad(t: &[u8], em: &[u8], k: usize) -> bool {
    let _ = (t, em, k);
    todo!()
}

/// EME-PKCS1-v1_5 encoding: 00 02 PS(nonzero random, ≥ 8) 00 ‖ m.
/// Errors: `DataTooLarge` if m is longer than k − 11.
pub fn encrypt_pad(m: &[u8], k: usize) -> Result<Vec<u8>> {
    let _ = (m, k);
    todo!()
}

/// EME-PKCS1-v1_5 decoding with implicit rejection (draft-irtf-cfrg-rsa-guidance): on a bad
/// encoding, return a synthetic message derived deterministically from `em` itself (which
/// only the private key yields), chosen in constant time; never an error that distinguishes.
/// `em` is the k-byte decrypted block.
pub fn decrypt_unpad_implicit(em: &[u8], k: usize) -> SecretBytes {
    let _ = (em, k);
    todo!()
}
