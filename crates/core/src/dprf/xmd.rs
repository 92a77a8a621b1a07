//! expand_message_xmd with SHA-512 (RFC 9380 §5.3.1), the only expander RFC 9497's
//! ristretto255-SHA512 suite uses, and only ever for 64 output bytes.

use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

const B_IN_BYTES: usize = 64;
/// SHA-512's input block: the zero pad in front of the message.
const S_IN_BYTES: usize = 128;

/// 64 uniform bytes from `msg` (its parts concatenated) under `dst` (at most 255 bytes; ours
/// are constants well under that).
pub(crate) fn expand_64(msg: &[&[u8]], dst: &[&[u8]]) -> Zeroizing<[u8; 64]> {
    let dst_len: usize = dst.iter().map(|d| d.len()).sum();
    debug_assert!(dst_len <= 255);
    let dst_prime = |h: &mut Sha512| {
        for d in dst {
            h.update(d);
        }
        h.update([dst_len as u8]);
    };
    let mut h = Sha512::new();
    h.update([0u8; S_IN_BYTES]);
    for m in msg {
        h.update(m);
    }
    // l_i_b_str = I2OSP(64, 2), then I2OSP(0, 1).
    h.update([0u8, B_IN_BYTES as u8, 0u8]);
    dst_prime(&mut h);
    let mut b0 = Zeroizing::new([0u8; 64]);
    b0.copy_from_slice(&h.finalize());

    // ell = 1: the output is b_1 = H(b_0 ‖ I2OSP(1, 1) ‖ DST_prime).
    let mut h = Sha512::new();
    h.update(&b0[..]);
    h.update([1u8]);
    dst_prime(&mut h);
    let mut out = Zeroizing::new([0u8; 64]);
    out.copy_from_slice(&h.finalize());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The construction itself is checked end to end by the RFC 9497 vectors (`dprf::tests`);
    /// here only what is local: a message or DST in parts is their concatenation.
    #[test]
    fn parts_concatenate() {
        let a = expand_64(&[b"ab", b"c"], &[b"DST-", b"x"]);
        let b = expand_64(&[b"abc"], &[b"DST-x"]);
        assert_eq!(*a, *b);
        assert_ne!(*a, *expand_64(&[b"abc"], &[b"DST-y"]));
    }
}
