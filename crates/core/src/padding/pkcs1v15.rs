//! PKCS#1 v1.5: EMSA (signatures) and EME (encryption; decryption with implicit rejection).
//!
//! Implicit rejection follows draft-irtf-cfrg-rsa-guidance (§ "Implicit rejection") with one
//! deliberate deviation: the draft keys its key-derivation key on the private exponent d
//! (KDK = HMAC-SHA256(SHA-256(d), C)), but in keyfrag no party ever holds d. We key it on the
//! decrypted block itself: KDK = HMAC-SHA256(SHA-256(DOMAIN ‖ em), em). em = c^d is a
//! deterministic function of the ciphertext that only the private key yields, so the synthetic
//! message is as unpredictable to an attacker as under the draft (whoever knows em for a
//! ciphertext already knows its decryption) and the same ciphertext always gives the same
//! answer. The rest (IRPRF, candidate lengths, constant-time selection) is as in the draft.

use digest::Digest;
use sha2::Sha256;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq, ConstantTimeLess};
use zeroize::Zeroizing;

use crate::secret::SecretBytes;
use crate::{Error, Result, random};

/// Domain separation for the implicit-rejection key derivation.
const IR_DOMAIN: &[u8] = b"keyfrag pkcs1v15 implicit rejection v1";

/// EMSA-PKCS1-v1_5: 00 01 FF..FF 00 ‖ t, k bytes; t is a DigestInfo (or raw data for
/// CKM_RSA_PKCS). Errors: `InvalidInput` if t is longer than k − 11.
pub fn sign_pad(t: &[u8], k: usize) -> Result<Vec<u8>> {
    if k < 11 || t.len() > k - 11 {
        return Err(Error::InvalidInput(
            "data too long for PKCS#1 v1.5 signature",
        ));
    }
    let mut em = vec![0xffu8; k];
    em[0] = 0x00;
    em[1] = 0x01;
    em[k - t.len() - 1] = 0x00;
    em[k - t.len()..].copy_from_slice(t);
    Ok(em)
}

/// Whether `em` (k bytes, from a public-key operation) is exactly sign_pad(t, k).
pub fn verify_pad(t: &[u8], em: &[u8], k: usize) -> bool {
    match sign_pad(t, k) {
        Ok(expected) => em.len() == k && bool::from(expected.ct_eq(em)),
        Err(_) => false,
    }
}

/// EME-PKCS1-v1_5 encoding: 00 02 PS(nonzero random, ≥ 8) 00 ‖ m.
/// Errors: `DataTooLarge` if m is longer than k − 11.
pub fn encrypt_pad(m: &[u8], k: usize) -> Result<Vec<u8>> {
    if k < 11 || m.len() > k - 11 {
        return Err(Error::DataTooLarge);
    }
    let ps_len = k - m.len() - 3;
    let mut em = vec![0u8; k];
    em[1] = 0x02;
    fill_nonzero(&mut em[2..2 + ps_len])?;
    em[k - m.len()..].copy_from_slice(m);
    Ok(em)
}

/// Fill with random nonzero bytes (redraws the zeros; the padding is not secret material
/// beyond its randomness, so the loop's data-dependence is harmless).
fn fill_nonzero(out: &mut [u8]) -> Result<()> {
    random::fill(out)?;
    let mut b = [0u8; 1];
    for o in out.iter_mut() {
        while *o == 0 {
            random::fill(&mut b)?;
            *o = b[0];
        }
    }
    Ok(())
}

/// EME-PKCS1-v1_5 decoding with implicit rejection (draft-irtf-cfrg-rsa-guidance): on a bad
/// encoding, return a synthetic message derived deterministically from `em` itself (which
/// only the private key yields), chosen in constant time; never an error that distinguishes.
/// `em` is the k-byte decrypted block. If em is not k bytes or k < 11 (public conditions,
/// caller bugs) the result is empty.
pub fn decrypt_unpad_implicit(em: &[u8], k: usize) -> SecretBytes {
    if k < 11 || em.len() != k || k > usize::from(u16::MAX) / 8 {
        return SecretBytes::new(Vec::new());
    }
    let k16 = u16::try_from(k).unwrap_or(u16::MAX);

    // Synthetic message and its length, always computed (constant time in em's validity).
    let kdk = kdk(em);
    let synthetic = ir_prf(&kdk, b"message", k);
    let candidates = ir_prf(&kdk, b"length", 256);
    let max_sep_offset = k16 - 10; // = k − 2 − 8: longest message is k − 11 bytes
    let mask = smear(max_sep_offset);
    let mut syn_len = 0u16;
    for pair in candidates.chunks_exact(2) {
        let cand = u16::from_be_bytes([pair[0], pair[1]]) & mask;
        syn_len.conditional_assign(&cand, cand.ct_lt(&max_sep_offset));
    }

    // Real decode: 00 02 PS(≥ 8 nonzero) 00 M, scanned fully without early exit.
    let mut good = em[0].ct_eq(&0x00) & em[1].ct_eq(&0x02);
    let mut looking = Choice::from(1u8);
    let mut zero_idx = 0u16;
    for (i, b) in em.iter().enumerate().skip(2) {
        let is_zero = b.ct_eq(&0);
        let i = u16::try_from(i).unwrap_or(u16::MAX);
        zero_idx.conditional_assign(&i, looking & is_zero);
        looking &= !is_zero;
    }
    good &= !looking;
    good &= !zero_idx.ct_lt(&10); // PS occupies em[2..zero_idx], so ≥ 8 bytes means ≥ 10

    // Select in constant time: the whole block byte by byte, then the start index.
    let mut buf = Zeroizing::new(vec![0u8; k]);
    for ((o, e), s) in buf.iter_mut().zip(em).zip(synthetic.iter()) {
        *o = u8::conditional_select(s, e, good);
    }
    let start = u16::conditional_select(&(k16 - syn_len), &(zero_idx + 1), good);
    // The returned length is the message's length, so the final slice cannot hide it.
    SecretBytes::new(buf[usize::from(start)..].to_vec())
}

/// Smallest all-ones mask covering v.
fn smear(v: u16) -> u16 {
    let mut m = v;
    m |= m >> 1;
    m |= m >> 2;
    m |= m >> 4;
    m |= m >> 8;
    m
}

/// KDK = HMAC-SHA256(SHA-256(DOMAIN ‖ em), em): see the module comment for why em, not d.
fn kdk(em: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(IR_DOMAIN);
    h.update(em);
    let key = Zeroizing::new(<[u8; 32]>::from(h.finalize()));
    hmac_sha256(&key[..], &[em])
}

/// IRPRF(key, label, bits) of the draft: HMAC-SHA256(key, I ‖ label ‖ bitLength) blocks for
/// I = 0, 1, ..., with I and bitLength as 2-byte big-endian, truncated to `len` bytes.
fn ir_prf(key: &[u8; 32], label: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let bits = u16::try_from(len * 8).unwrap_or(u16::MAX).to_be_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(len + 32));
    let mut i = 0u16;
    while out.len() < len {
        let block = hmac_sha256(key, &[&i.to_be_bytes(), label, &bits]);
        out.extend_from_slice(&block[..]);
        i += 1;
    }
    out.truncate(len);
    out
}

/// HMAC-SHA256 (RFC 2104) over the concatenation of `parts`; key ≤ 64 bytes.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let mut ipad = Zeroizing::new([0x36u8; 64]);
    let mut opad = Zeroizing::new([0x5cu8; 64]);
    for (i, kb) in key.iter().enumerate() {
        ipad[i] ^= kb;
        opad[i] ^= kb;
    }
    let mut inner = Sha256::new();
    inner.update(&ipad[..]);
    for p in parts {
        inner.update(p);
    }
    let inner = Zeroizing::new(<[u8; 32]>::from(inner.finalize()));
    let mut outer = Sha256::new();
    outer.update(&opad[..]);
    outer.update(&inner[..]);
    Zeroizing::new(<[u8; 32]>::from(outer.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_rfc4231_case2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya ", b"want for nothing?"]);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn smear_covers_value() {
        assert_eq!(smear(0), 0);
        assert_eq!(smear(1), 1);
        assert_eq!(smear(118), 127);
        assert_eq!(smear(246), 255);
        assert_eq!(smear(256), 511);
    }

    #[test]
    fn ir_prf_lengths() {
        let key = [7u8; 32];
        assert_eq!(ir_prf(&key, b"length", 256).len(), 256);
        assert_eq!(ir_prf(&key, b"message", 129).len(), 129);
        assert_ne!(
            ir_prf(&key, b"length", 32)[..],
            ir_prf(&key, b"message", 32)[..]
        );
    }
}
