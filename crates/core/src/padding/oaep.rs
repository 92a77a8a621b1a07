//! EME-OAEP (RFC 8017 §7.1).
//!
//! Decoding is constant time in the contents of `em` and has a single error, so that no
//! failure is distinguishable from another (Manger's attack; CRYPTO-NOTES §2.2 step 6).

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroizing;

use crate::hash::HashAlg;
use crate::padding::mgf1::mgf1_xor;
use crate::secret::SecretBytes;
use crate::{Error, Result, random};

/// EME-OAEP encoding of m with a fresh random seed, k bytes.
/// Errors: `DataTooLarge` if m is longer than k − 2·hLen − 2.
pub fn encode(
    m: &[u8],
    k: usize,
    hash: HashAlg,
    mgf_hash: HashAlg,
    label: &[u8],
) -> Result<Vec<u8>> {
    let h_len = hash.output_len();
    if k < 2 * h_len + 2 || m.len() > k - 2 * h_len - 2 {
        return Err(Error::DataTooLarge);
    }
    // EM = 0x00 ‖ maskedSeed ‖ maskedDB, DB = lHash ‖ PS ‖ 0x01 ‖ M.
    let mut em = vec![0u8; k];
    let (seed, db) = em[1..].split_at_mut(h_len);
    let db_len = db.len();
    db[..h_len].copy_from_slice(&hash.digest(label));
    db[db_len - m.len() - 1] = 0x01;
    db[db_len - m.len()..].copy_from_slice(m);
    random::fill(seed)?;
    mgf1_xor(mgf_hash, seed, db);
    mgf1_xor(mgf_hash, db, seed);
    Ok(em)
}

/// EME-OAEP decoding in constant time; every failure is the single `Error::Decryption`.
pub fn decode(
    em: &[u8],
    k: usize,
    hash: HashAlg,
    mgf_hash: HashAlg,
    label: &[u8],
) -> Result<SecretBytes> {
    let h_len = hash.output_len();
    // Public conditions (lengths), not properties of the secret contents.
    if k < 2 * h_len + 2 || em.len() != k {
        return Err(Error::Decryption);
    }
    let mut buf = Zeroizing::new(em.to_vec());
    let (y, rest) = buf.split_at_mut(1);
    let (seed, db) = rest.split_at_mut(h_len);
    mgf1_xor(mgf_hash, db, seed);
    mgf1_xor(mgf_hash, seed, db);

    let l_hash = hash.digest(label);
    let mut good = y[0].ct_eq(&0) & db[..h_len].ct_eq(&l_hash[..]);

    // Find the 0x01 after PS (zeros) without early exit; any other byte before it is an error.
    let mut looking = Choice::from(1u8);
    let mut one_idx = 0u32;
    let mut bad_byte = Choice::from(0u8);
    for (i, b) in db.iter().enumerate().skip(h_len) {
        let is_one = b.ct_eq(&0x01);
        let is_zero = b.ct_eq(&0x00);
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        one_idx.conditional_assign(&i, looking & is_one);
        bad_byte |= looking & !is_one & !is_zero;
        looking &= !is_one;
    }
    good &= !looking & !bad_byte;

    // One branch, on the combined verdict only (RFC 8017 §7.1.2 note).
    if !bool::from(good) {
        return Err(Error::Decryption);
    }
    let start = one_idx as usize + 1;
    Ok(SecretBytes::new(db[start..].to_vec()))
}
