//! MGF1 (RFC 8017 B.2.1).

use crate::hash::HashAlg;

/// XOR MGF1(seed, out.len()) into `out`.
pub fn mgf1_xor(hash: HashAlg, seed: &[u8], out: &mut [u8]) {
    let _ = (hash, seed, out);
    todo!()
}
