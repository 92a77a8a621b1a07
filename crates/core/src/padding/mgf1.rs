//! MGF1 (RFC 8017 B.2.1).

use zeroize::Zeroize;

use crate::hash::HashAlg;

/// XOR MGF1(seed, out.len()) into `out`.
pub fn mgf1_xor(hash: HashAlg, seed: &[u8], out: &mut [u8]) {
    // T = Hash(seed ‖ C) for C = 0, 1, ... (4-byte big-endian counter), truncated to out.len().
    for (counter, chunk) in out.chunks_mut(hash.output_len()).enumerate() {
        // RFC 8017 caps the mask at 2^32·hLen bytes; no RSA block comes near that.
        let counter = u32::try_from(counter).expect("MGF1 mask longer than 2^32 blocks");
        let mut h = hash.hasher();
        h.update(seed);
        h.update(&counter.to_be_bytes());
        let mut block = h.finalize();
        for (o, b) in chunk.iter_mut().zip(block.iter()) {
            *o ^= b;
        }
        // The mask can protect secrets (OAEP seed and DB), so do not leave it behind.
        block.zeroize();
    }
}
