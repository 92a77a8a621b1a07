//! EMSA-PSS (RFC 8017 §9.1).

use subtle::ConstantTimeEq;

use crate::hash::HashAlg;
use crate::padding::mgf1::mgf1_xor;
use crate::{Error, Result, random};

/// emLen and the number of leading bits of EM that must be zero, for emBits = mod_bits − 1.
fn em_geometry(mod_bits: usize) -> Option<(usize, usize, usize)> {
    let em_bits = mod_bits.checked_sub(1)?;
    let em_len = em_bits.div_ceil(8);
    let k = mod_bits.div_ceil(8);
    Some((em_len, 8 * em_len - em_bits, k))
}

/// H = Hash(0x00·8 ‖ mHash ‖ salt).
fn m_prime_hash(hash: HashAlg, m_hash: &[u8], salt: &[u8]) -> Vec<u8> {
    let mut h = hash.hasher();
    h.update(&[0u8; 8]);
    h.update(m_hash);
    h.update(salt);
    h.finalize()
}

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
    let mut salt = vec![0u8; salt_len];
    random::fill(&mut salt)?;
    encode_with_salt(m_hash, mod_bits, hash, mgf_hash, &salt)
}

/// EMSA-PSS-ENCODE with a caller-chosen salt (deterministic; for known-answer tests and for
/// callers that draw the salt themselves). Same output and errors as [`encode`].
pub fn encode_with_salt(
    m_hash: &[u8],
    mod_bits: usize,
    hash: HashAlg,
    mgf_hash: HashAlg,
    salt: &[u8],
) -> Result<Vec<u8>> {
    let h_len = hash.output_len();
    if m_hash.len() != h_len {
        return Err(Error::InvalidInput("message hash has the wrong length"));
    }
    let (em_len, zero_bits, k) =
        em_geometry(mod_bits).ok_or(Error::InvalidInput("modulus too small"))?;
    if em_len < h_len + salt.len() + 2 {
        return Err(Error::InvalidInput("salt does not fit the modulus"));
    }
    let h = m_prime_hash(hash, m_hash, salt);
    // DB = PS ‖ 0x01 ‖ salt, masked with MGF(H).
    let db_len = em_len - h_len - 1;
    let mut out = vec![0u8; k];
    let em = &mut out[k - em_len..];
    em[db_len - salt.len() - 1] = 0x01;
    em[db_len - salt.len()..db_len].copy_from_slice(salt);
    mgf1_xor(mgf_hash, &h, &mut em[..db_len]);
    em[0] &= 0xff >> zero_bits;
    em[db_len..db_len + h_len].copy_from_slice(&h);
    em[em_len - 1] = 0xbc;
    Ok(out)
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
    // Everything here is public (signature verification), so early returns are fine.
    let h_len = hash.output_len();
    let Some((em_len, zero_bits, k)) = em_geometry(mod_bits) else {
        return false;
    };
    if m_hash.len() != h_len || em.len() != k || em_len < h_len + salt_len + 2 {
        return false;
    }
    // With emBits a multiple of 8 the k-byte block carries one extra leading zero byte.
    let (lead, em) = em.split_at(k - em_len);
    if lead.iter().any(|&b| b != 0) || em[em_len - 1] != 0xbc {
        return false;
    }
    let db_len = em_len - h_len - 1;
    let h = &em[db_len..db_len + h_len];
    if em[0] & !(0xffu8 >> zero_bits) != 0 {
        return false;
    }
    let mut db = em[..db_len].to_vec();
    mgf1_xor(mgf_hash, h, &mut db);
    db[0] &= 0xff >> zero_bits;
    let ps_len = db_len - salt_len - 1;
    if db[..ps_len].iter().any(|&b| b != 0) || db[ps_len] != 0x01 {
        return false;
    }
    let salt = &db[ps_len + 1..];
    bool::from(m_prime_hash(hash, m_hash, salt).ct_eq(h))
}
