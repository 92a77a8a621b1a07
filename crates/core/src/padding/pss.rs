//! EMSA-PSS (RFC 8017 §9.1).

use crate::Result;
use crate::hash::HashAlg;

/// EMSA-PSS-ENCODE of an already-hashed message `m_hash` with a fresh random salt of
/// `salt_len` bytes, for a modulus of `mod_bits` bits (emBits = mod_bits − 1). Returns
/// k = ceil(mod_bits/8) bytes (a leading zero byte when emBits is a multiple of 8).
/// Errors: `InvalidInput` if m_hash has the wrong length for `hash` or the salt does not fit.
pub fn encode(
    m_hash: &[u8],
    mod_bits: usize,
    hash: HashAlg,
    mgf_hash: HashAlg,
    salt_len: usize,
) -> Result<Vec<u8>> {
    let _ = (m_hash, mod_bits, hash, mgf_hash, salt_len);
    todo!()
}

/// EMSA-PSS-VERIFY: `em` is the k-byte result of the public-key operation.
pub fn verify(
    m_hash: &[u8],
    em: &[u8],
    mod_bits: usize,
    hash: HashAlg,
    mgf_hash: HashAlg,
    salt_len: usize,
) -> bool {
    let _ = (m_hash, em, mod_bits, hash, mgf_hash, salt_len);
    todo!()
}
