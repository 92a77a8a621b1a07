//! CKM_KEYFRAG_AES_GCM_MSG (include/keyfrag.h): per-message data keys (CRYPTO-NOTES §3.2).
//!
//! Each encryption draws a 32-byte salt, evaluates the key's PRF on
//! "keyfrag/msg/v1" ‖ key uid ‖ salt, and derives a one-message AES-256 key
//!   DEK = HKDF-SHA256(salt = "keyfrag/msg/v1", IKM = F_k(x), info = header, L = 32).
//! The output is self-describing:
//!
//!   header = "KF" ‖ version 1 ‖ suite 1 ‖ key uid (16) ‖ salt (32) ‖ IV (12)   (64 bytes)
//!   output = header ‖ AES-256-GCM(DEK, IV, AAD = header, plaintext) ‖ tag (16)
//!
//! Suite 1 = ristretto255-SHA512 2HashDH / HKDF-SHA256 / AES-256-GCM. Everything that
//! determines the DEK is in the header and authenticated, so a header cannot be moved to
//! another key or message. C_Decrypt with the same mechanism and no parameters parses the
//! header, re-derives the DEK (one PRF round trip) and opens; any change to any field is
//! CKR_ENCRYPTED_DATA_INVALID. A leaked DEK exposes one message. Data keys of this mechanism
//! are never cached. Input is buffered: multi-part calls produce everything at C_*Final.

use cryptoki_sys::*;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::aes_gcm::{self, GcmParams};
use super::sym::{Bytes, Prf, SymCipher};
use crate::error::{Result, err};

pub const LABEL: &[u8] = b"keyfrag/msg/v1";
const MAGIC: &[u8; 2] = b"KF";
const VERSION: u8 = 1;
const SUITE: u8 = 1;
pub const HEADER_LEN: usize = 2 + 1 + 1 + 16 + 32 + 12;
pub const TAG_LEN: usize = 16;

struct Header {
    uid: [u8; 16],
    salt: [u8; 32],
    iv: [u8; 12],
}

impl Header {
    fn encode(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(HEADER_LEN);
        h.extend_from_slice(MAGIC);
        h.push(VERSION);
        h.push(SUITE);
        h.extend_from_slice(&self.uid);
        h.extend_from_slice(&self.salt);
        h.extend_from_slice(&self.iv);
        h
    }

    fn parse(b: &[u8]) -> Result<Header> {
        if b.len() < HEADER_LEN + TAG_LEN {
            return Err(err(CKR_ENCRYPTED_DATA_LEN_RANGE));
        }
        if &b[..2] != MAGIC || b[2] != VERSION || b[3] != SUITE {
            tracing::debug!("per-message ciphertext of an unknown format or version");
            return Err(err(CKR_ENCRYPTED_DATA_INVALID));
        }
        let mut h = Header {
            uid: [0; 16],
            salt: [0; 32],
            iv: [0; 12],
        };
        h.uid.copy_from_slice(&b[4..20]);
        h.salt.copy_from_slice(&b[20..52]);
        h.iv.copy_from_slice(&b[52..64]);
        Ok(h)
    }
}

/// The per-message key for `header`.
fn dek(prf: &dyn Prf, h: &Header, header: &[u8]) -> Result<Bytes> {
    let x = [LABEL, &h.uid, &h.salt].concat();
    let y = prf.evaluate(&x)?;
    let mut k = Zeroizing::new(vec![0u8; 32]);
    Hkdf::<Sha256>::new(Some(LABEL), &y[..])
        .expand(header, &mut k)
        .map_err(|_| err(CKR_GENERAL_ERROR))?;
    Ok(k)
}

/// Encrypt one message with fresh `salt` and `iv` (random in use; fixed in tests).
pub fn seal(
    prf: &dyn Prf,
    uid: [u8; 16],
    salt: [u8; 32],
    iv: [u8; 12],
    data: &[u8],
) -> Result<Vec<u8>> {
    let h = Header { uid, salt, iv };
    let header = h.encode();
    let key = dek(prf, &h, &header)?;
    let params = GcmParams::new(&iv, &header, 128)?;
    let body = aes_gcm::seal(&key, &params, data)?;
    Ok([&header[..], &body[..]].concat())
}

/// Decrypt a message made by `seal` for the key `uid`.
pub fn open(prf: &dyn Prf, uid: [u8; 16], data: &[u8]) -> Result<Bytes> {
    let h = Header::parse(data)?;
    if h.uid != uid {
        tracing::debug!("per-message ciphertext made under another key");
        return Err(err(CKR_ENCRYPTED_DATA_INVALID));
    }
    let header = &data[..HEADER_LEN];
    let key = dek(prf, &h, header)?;
    let params = GcmParams::new(&h.iv, header, 128)?;
    aes_gcm::open(&key, &params, &data[HEADER_LEN..])
}

struct MsgOp {
    prf: Box<dyn Prf>,
    uid: [u8; 16],
    encrypt: bool,
    buf: Bytes,
}

impl SymCipher for MsgOp {
    fn update(&mut self, data: &[u8]) -> Result<Bytes> {
        self.buf.extend_from_slice(data);
        Ok(Bytes::default())
    }

    fn finish(&mut self) -> Result<Bytes> {
        let data = Zeroizing::new(std::mem::take(&mut *self.buf));
        if self.encrypt {
            let mut salt = [0u8; 32];
            let mut iv = [0u8; 12];
            getrandom::fill(&mut salt).map_err(|_| err(CKR_FUNCTION_FAILED))?;
            getrandom::fill(&mut iv).map_err(|_| err(CKR_FUNCTION_FAILED))?;
            Ok(Zeroizing::new(seal(&*self.prf, self.uid, salt, iv, &data)?))
        } else {
            open(&*self.prf, self.uid, &data)
        }
    }
}

pub fn encryptor(prf: Box<dyn Prf>, uid: [u8; 16]) -> Box<dyn SymCipher> {
    Box::new(MsgOp {
        prf,
        uid,
        encrypt: true,
        buf: Bytes::default(),
    })
}

pub fn decryptor(prf: Box<dyn Prf>, uid: [u8; 16]) -> Box<dyn SymCipher> {
    Box::new(MsgOp {
        prf,
        uid,
        encrypt: false,
        buf: Bytes::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_key::tests::TestPrf;

    const UID: [u8; 16] = [0xab; 16];

    #[test]
    fn round_trip_and_format() {
        let prf = TestPrf([7; 32]);
        let c = seal(&prf, UID, [1; 32], [2; 12], b"one message").unwrap();
        assert_eq!(c.len(), HEADER_LEN + 11 + TAG_LEN);
        assert_eq!(&c[..4], b"KF\x01\x01");
        assert_eq!(&c[4..20], &UID);
        assert_eq!(&open(&prf, UID, &c).unwrap()[..], b"one message");
        // Another salt, another key: same plaintext and IV, unrelated ciphertext.
        let c2 = seal(&prf, UID, [3; 32], [2; 12], b"one message").unwrap();
        assert_ne!(c2[HEADER_LEN..], c[HEADER_LEN..]);
        // The random path.
        let mut e = encryptor(Box::new(TestPrf([7; 32])), UID);
        e.update(b"one ").unwrap();
        e.update(b"message").unwrap();
        let r = e.finish().unwrap();
        let mut d = decryptor(Box::new(TestPrf([7; 32])), UID);
        d.update(&r).unwrap();
        assert_eq!(&d.finish().unwrap()[..], b"one message");
    }

    #[test]
    fn every_field_is_authenticated() {
        let prf = TestPrf([7; 32]);
        let c = seal(&prf, UID, [1; 32], [2; 12], b"payload").unwrap();
        for i in 0..c.len() {
            let mut bad = c.clone();
            bad[i] ^= 0x01;
            let e = open(&prf, UID, &bad).unwrap_err().rv();
            assert_eq!(e, CKR_ENCRYPTED_DATA_INVALID, "byte {i}");
        }
        // Under another key's PRF, or claimed by another key.
        assert_eq!(
            open(&TestPrf([8; 32]), UID, &c).unwrap_err().rv(),
            CKR_ENCRYPTED_DATA_INVALID
        );
        assert_eq!(
            open(&prf, [0xcd; 16], &c).unwrap_err().rv(),
            CKR_ENCRYPTED_DATA_INVALID
        );
        assert_eq!(
            open(&prf, UID, &c[..HEADER_LEN + 15]).unwrap_err().rv(),
            CKR_ENCRYPTED_DATA_LEN_RANGE
        );
    }
}
