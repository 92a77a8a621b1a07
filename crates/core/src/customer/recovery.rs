//! The recovery secret: 256 random bits that open the fragment file's second seal, so a lost
//! file or a PIN reset by the security officer never loses a key.
//!
//! Printed once, as 14 groups of four base32 characters (RFC 4648 alphabet): 52 for the
//! secret, 4 for a checksum that catches a mistyped character before any decryption is tried.

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{Error, Result, random};

pub const RECOVERY_BYTES: usize = 32;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_CHARS: usize = 52; // ceil(256 / 5)
const CHECK_CHARS: usize = 4;
const CHECK_LABEL: &[u8] = b"keyfrag/recovery-checksum/v1";

#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RecoverySecret([u8; RECOVERY_BYTES]);

impl std::fmt::Debug for RecoverySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoverySecret([redacted])")
    }
}

impl RecoverySecret {
    pub fn generate() -> Result<Self> {
        let mut b = [0u8; RECOVERY_BYTES];
        random::fill(&mut b)?;
        Ok(RecoverySecret(b))
    }

    pub(crate) fn expose(&self) -> &[u8; RECOVERY_BYTES] {
        &self.0
    }

    /// The printable form: "ABCD-EFGH-…" (the caller shows it once and drops it).
    pub fn to_display(&self) -> Zeroizing<String> {
        let mut chars = Zeroizing::new(encode_base32(&self.0));
        chars.push_str(&checksum_chars(&self.0));
        let mut out = Zeroizing::new(String::with_capacity(chars.len() * 5 / 4));
        for (i, c) in chars.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push('-');
            }
            out.push(c);
        }
        out
    }

    /// Parses the printable form; dashes, spaces and letter case do not matter.
    pub fn parse(text: &str) -> Result<Self> {
        let chars: Zeroizing<Vec<u8>> = Zeroizing::new(
            text.bytes()
                .filter(|b| !matches!(b, b'-' | b' ' | b'\t' | b'\n' | b'\r'))
                .map(|b| b.to_ascii_uppercase())
                .collect(),
        );
        if chars.len() != SECRET_CHARS + CHECK_CHARS {
            return Err(Error::InvalidInput(
                "a recovery secret has 56 characters (14 groups of 4)",
            ));
        }
        let bytes = decode_base32(&chars[..SECRET_CHARS]).ok_or(Error::InvalidInput(
            "a recovery secret uses only the letters A-Z and digits 2-7",
        ))?;
        let secret = RecoverySecret(*bytes);
        if checksum_chars(&secret.0).as_bytes() != &chars[SECRET_CHARS..] {
            return Err(Error::InvalidInput(
                "the recovery secret's checksum does not match: a character is mistyped",
            ));
        }
        Ok(secret)
    }
}

fn checksum_chars(bytes: &[u8; RECOVERY_BYTES]) -> String {
    let digest = Sha256::new()
        .chain_update(CHECK_LABEL)
        .chain_update(bytes)
        .finalize();
    let bits = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    (0..CHECK_CHARS)
        .map(|i| ALPHABET[((bits >> (27 - 5 * i)) & 31) as usize] as char)
        .collect()
}

fn encode_base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut acc: u16 = 0;
    let mut nbits = 0;
    for &b in bytes {
        acc = (acc << 8) | u16::from(b);
        nbits += 8;
        while nbits >= 5 {
            nbits -= 5;
            out.push(ALPHABET[((acc >> nbits) & 31) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((acc << (5 - nbits)) & 31) as usize] as char);
    }
    acc.zeroize();
    out
}

/// Decodes exactly 52 characters into 32 bytes; the 4 spare bits must be zero.
fn decode_base32(chars: &[u8]) -> Option<Zeroizing<[u8; RECOVERY_BYTES]>> {
    let mut out = Zeroizing::new([0u8; RECOVERY_BYTES]);
    let mut acc: u16 = 0;
    let mut nbits = 0;
    let mut n = 0;
    for &c in chars {
        let v = ALPHABET.iter().position(|&a| a == c)? as u16;
        acc = ((acc << 5) | v) & 0x1fff;
        nbits += 5;
        if nbits >= 8 {
            nbits -= 8;
            *out.get_mut(n)? = (acc >> nbits) as u8;
            n += 1;
        }
    }
    let spare_zero = acc & ((1 << nbits) - 1) == 0;
    acc.zeroize();
    (n == RECOVERY_BYTES && spare_zero).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        for _ in 0..32 {
            let s = RecoverySecret::generate().unwrap();
            let shown = s.to_display();
            assert_eq!(shown.len(), 14 * 4 + 13);
            let back = RecoverySecret::parse(&shown).unwrap();
            assert_eq!(back.expose(), s.expose());
            let relaxed = shown.replace('-', " ").to_lowercase();
            assert_eq!(
                RecoverySecret::parse(&relaxed).unwrap().expose(),
                s.expose()
            );
        }
    }

    #[test]
    fn a_mistyped_character_is_caught_by_the_checksum() {
        let s = RecoverySecret::from_fixed([9u8; RECOVERY_BYTES]);
        let shown = s.to_display();
        let mut typo = shown.as_bytes().to_vec();
        typo[5] = if typo[5] == b'A' { b'B' } else { b'A' };
        let err = RecoverySecret::parse(std::str::from_utf8(&typo).unwrap()).unwrap_err();
        assert!(err.to_string().contains("mistyped"), "{err}");
    }

    #[test]
    fn wrong_lengths_and_alphabets_are_refused() {
        assert!(RecoverySecret::parse("ABCD").is_err());
        let s = RecoverySecret::from_fixed([1u8; RECOVERY_BYTES]).to_display();
        let with_one = s.replacen(|c: char| c.is_ascii_uppercase(), "1", 1);
        assert!(RecoverySecret::parse(&with_one).is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = RecoverySecret::from_fixed([5u8; RECOVERY_BYTES]);
        assert_eq!(format!("{s:?}"), "RecoverySecret([redacted])");
    }

    impl RecoverySecret {
        fn from_fixed(b: [u8; RECOVERY_BYTES]) -> Self {
            RecoverySecret(b)
        }
    }
}
