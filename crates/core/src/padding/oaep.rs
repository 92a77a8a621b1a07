//! EME-OAEP (RFC 8017 §7.1).

use crate::Result;
use crate::hash::HashAlg;
use crate::secret::SecretBytes;

/// EME-OAEP encoding of m with a fresh random seed, k bytes.
/// Errors: `DataTooLarge` if m is longer than k − 2·hLen − 2.
pub fn encode(m: &[u8], k: usize, hash: HashAlg, mgf_hash: HashAlg, label: &[u8]) -> Result<Vec<u8>> {
    let _ = (m, k, hash, mgf_hash, label);
    todo!()
}

/// EME-OAEP decoding in constant time; every failure is the single `Error::Decryption`.
pub fn decode(
    em: &[u8],
    k: usize,
    hash: HashAlg,
    mgf_hash: HashAlg,
    label: &[u8],
) -> Result<SecretBytes> {
    let _ = (em, k, hash, mgf_hash, label);
    todo!()
}
