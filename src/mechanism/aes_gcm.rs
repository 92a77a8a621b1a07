//! CKM_AES_GCM (CK_GCM_PARAMS): the `aes-gcm` crate, one-shot. The caller supplies the IV
//! (12 bytes: the only length the crate's standard nonce supports; others are refused with
//! CKR_MECHANISM_PARAM_INVALID), the AAD and the tag length (96..=128 bits, whole bytes).
//! Multi-part calls buffer their input and produce everything at C_*Final; decryption
//! verifies the tag before any plaintext leaves (PKCS#11 3.0 §2.12.3).

use aes::cipher::consts::{U12, U13, U14, U15, U16};
use aes_gcm::aead::{AeadCore, AeadInOut, KeyInit, Tag};
use aes_gcm::{AesGcm, Nonce};
use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::sym::{Bytes, SymCipher, with_aes};
use crate::error::{Result, err};

pub const IV_LEN: usize = 12;

/// Validated GCM parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcmParams {
    pub iv: [u8; IV_LEN],
    pub aad: Vec<u8>,
    /// Tag length in bytes (12..=16).
    pub tag_len: usize,
}

impl GcmParams {
    pub fn new(iv: &[u8], aad: &[u8], tag_bits: usize) -> Result<GcmParams> {
        let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| {
            tracing::debug!(len = iv.len(), "GCM IV length other than 12 bytes");
            err(CKR_MECHANISM_PARAM_INVALID)
        })?;
        if !(96..=128).contains(&tag_bits) || !tag_bits.is_multiple_of(8) {
            tracing::debug!(tag_bits, "GCM tag length outside 96..=128 bits");
            return Err(err(CKR_MECHANISM_PARAM_INVALID));
        }
        Ok(GcmParams {
            iv,
            aad: aad.to_vec(),
            tag_len: tag_bits / 8,
        })
    }
}

/// Seal `data` in place and append the tag.
fn seal_with<A>(key: &[u8], p: &GcmParams, data: &mut Vec<u8>) -> Result<()>
where
    A: AeadInOut + AeadCore<NonceSize = U12> + KeyInit,
{
    let c = A::new_from_slice(key).map_err(|_| err(CKR_KEY_SIZE_RANGE))?;
    let nonce = Nonce::<U12>::from(p.iv);
    let tag = c
        .encrypt_inout_detached(&nonce, &p.aad, data.as_mut_slice().into())
        .map_err(|_| err(CKR_DATA_LEN_RANGE))?;
    data.extend_from_slice(&tag);
    Ok(())
}

/// Open `data` (ciphertext ‖ tag) in place; on success `data` is the plaintext.
fn open_with<A>(key: &[u8], p: &GcmParams, data: &mut Vec<u8>) -> Result<()>
where
    A: AeadInOut + AeadCore<NonceSize = U12> + KeyInit,
{
    let c = A::new_from_slice(key).map_err(|_| err(CKR_KEY_SIZE_RANGE))?;
    let Some(ct_len) = data.len().checked_sub(p.tag_len) else {
        return Err(err(CKR_ENCRYPTED_DATA_LEN_RANGE));
    };
    let tag = data.split_off(ct_len);
    let tag = Tag::<A>::try_from(tag.as_slice()).map_err(|_| err(CKR_GENERAL_ERROR))?;
    let nonce = Nonce::<U12>::from(p.iv);
    c.decrypt_inout_detached(&nonce, &p.aad, data.as_mut_slice().into(), &tag)
        .map_err(|_| {
            zeroize::Zeroize::zeroize(data);
            err(CKR_ENCRYPTED_DATA_INVALID)
        })
}

/// Dispatch on the key length and the tag length to the crate's types.
macro_rules! gcm_dispatch {
    ($f:ident, $key:expr, $p:expr, $data:expr) => {
        with_aes!($key.len(), A => match $p.tag_len {
            12 => $f::<AesGcm<A, U12, U12>>($key, $p, $data),
            13 => $f::<AesGcm<A, U12, U13>>($key, $p, $data),
            14 => $f::<AesGcm<A, U12, U14>>($key, $p, $data),
            15 => $f::<AesGcm<A, U12, U15>>($key, $p, $data),
            16 => $f::<AesGcm<A, U12, U16>>($key, $p, $data),
            _ => Err(err(CKR_MECHANISM_PARAM_INVALID)),
        })
    };
}

/// Seal `data` (ciphertext ‖ tag); the one function every GCM path uses.
pub fn seal(key: &[u8], p: &GcmParams, data: &[u8]) -> Result<Bytes> {
    let mut buf = Zeroizing::new(data.to_vec());
    gcm_dispatch!(seal_with, key, p, &mut buf)?;
    Ok(buf)
}

/// Open ciphertext ‖ tag: CKR_ENCRYPTED_DATA_INVALID on a wrong tag, nothing released.
pub fn open(key: &[u8], p: &GcmParams, data: &[u8]) -> Result<Bytes> {
    let mut buf = Zeroizing::new(data.to_vec());
    gcm_dispatch!(open_with, key, p, &mut buf)?;
    Ok(buf)
}

struct Gcm {
    key: Bytes,
    params: GcmParams,
    encrypt: bool,
    buf: Bytes,
}

impl SymCipher for Gcm {
    fn update(&mut self, data: &[u8]) -> Result<Bytes> {
        self.buf.extend_from_slice(data);
        Ok(Bytes::default())
    }

    fn finish(&mut self) -> Result<Bytes> {
        let data = std::mem::take(&mut *self.buf);
        let data = Zeroizing::new(data);
        if self.encrypt {
            seal(&self.key, &self.params, &data)
        } else {
            open(&self.key, &self.params, &data)
        }
    }
}

pub fn encryptor(key: Bytes, params: GcmParams) -> Result<Box<dyn SymCipher>> {
    check_key(&key)?;
    Ok(Box::new(Gcm {
        key,
        params,
        encrypt: true,
        buf: Bytes::default(),
    }))
}

pub fn decryptor(key: Bytes, params: GcmParams) -> Result<Box<dyn SymCipher>> {
    check_key(&key)?;
    Ok(Box::new(Gcm {
        key,
        params,
        encrypt: false,
        buf: Bytes::default(),
    }))
}

fn check_key(key: &[u8]) -> Result<()> {
    if matches!(key.len(), 16 | 24 | 32) {
        Ok(())
    } else {
        Err(err(CKR_KEY_SIZE_RANGE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::sym::unhex;

    fn p(iv: &str, aad: &str, bits: usize) -> GcmParams {
        GcmParams::new(&unhex(iv), &unhex(aad), bits).unwrap()
    }

    // The GCM specification's test cases 2 and 4 (McGrew and Viega, AES-128), and 16 (AES-256).
    #[test]
    fn known_answers() {
        let out = seal(&[0; 16], &p("000000000000000000000000", "", 128), &[0; 16]).unwrap();
        assert_eq!(
            &out[..],
            &unhex("0388dace60b6a392f328c2b971b2fe78 ab6e47d42cec13bdf53a67b21257bddf")[..]
        );
        let key = unhex("feffe9928665731c6d6a8f9467308308");
        let pt = unhex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        );
        let params = p(
            "cafebabefacedbaddecaf888",
            "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            128,
        );
        let out = seal(&key, &params, &pt).unwrap();
        assert_eq!(
            &out[..],
            &unhex(
                "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e\
                 21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091\
                 5bc94fbc3221a5db94fae95ae7121a47"
            )[..]
        );
        assert_eq!(&open(&key, &params, &out).unwrap()[..], &pt[..]);
        // A 96-bit tag is the full tag's first 12 bytes.
        let short = seal(
            &key,
            &GcmParams {
                tag_len: 12,
                ..params.clone()
            },
            &pt,
        )
        .unwrap();
        assert_eq!(short[..], out[..out.len() - 4]);
        let key256 = unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
        let out = seal(&key256, &params, &pt).unwrap();
        assert_eq!(
            &out[pt.len()..],
            &unhex("76fc6ece0f4e1768cddf8853bb2d551b")[..]
        );
    }

    #[test]
    fn tampering_is_refused() {
        let key = [5u8; 32];
        let params = p("0102030405060708090a0b0c", "aa", 104);
        let ct = seal(&key, &params, b"attack at dawn").unwrap();
        assert_eq!(ct.len(), 14 + 13);
        for i in 0..ct.len() {
            let mut bad = ct.to_vec();
            bad[i] ^= 0x80;
            assert_eq!(
                open(&key, &params, &bad).unwrap_err().rv(),
                CKR_ENCRYPTED_DATA_INVALID
            );
        }
        let other_aad = GcmParams {
            aad: b"ab".to_vec(),
            ..params.clone()
        };
        assert_eq!(
            open(&key, &other_aad, &ct).unwrap_err().rv(),
            CKR_ENCRYPTED_DATA_INVALID
        );
        assert_eq!(
            open(&key, &params, &ct[..12]).unwrap_err().rv(),
            CKR_ENCRYPTED_DATA_LEN_RANGE
        );
    }

    #[test]
    fn parameters() {
        assert!(GcmParams::new(&[0; 12], &[], 96).is_ok());
        for (iv, bits) in [
            (8usize, 128usize),
            (16, 128),
            (12, 64),
            (12, 100),
            (12, 136),
        ] {
            assert_eq!(
                GcmParams::new(&vec![0; iv], &[], bits).unwrap_err().rv(),
                CKR_MECHANISM_PARAM_INVALID
            );
        }
    }

    #[test]
    fn multipart_buffers_until_final() {
        let key = Zeroizing::new(vec![9u8; 24]);
        let params = p("000102030405060708090a0b", "", 128);
        let mut e = encryptor(key.clone(), params.clone()).unwrap();
        assert!(e.update(b"hello ").unwrap().is_empty());
        assert!(e.update(b"world").unwrap().is_empty());
        let ct = e.finish().unwrap();
        assert_eq!(ct[..], seal(&key, &params, b"hello world").unwrap()[..]);
        let mut d = decryptor(key, params).unwrap();
        assert!(d.update(&ct[..3]).unwrap().is_empty());
        assert!(d.update(&ct[3..]).unwrap().is_empty());
        assert_eq!(&d.finish().unwrap()[..], b"hello world");
    }
}
