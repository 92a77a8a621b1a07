//! CKM_AES_KEY_WRAP (RFC 3394) and CKM_AES_KEY_WRAP_PAD (RFC 5649), the `aes-kw` crate, for
//! C_WrapKey and C_UnwrapKey, and for C_Encrypt/C_Decrypt (single-part in effect: input is
//! buffered, since the modes work on the whole key at once). A failed integrity check is CKR_WRAPPED_KEY_INVALID; an input
//! of a length the mode cannot take is CKR_WRAPPED_KEY_LEN_RANGE (unwrap) or
//! CKR_KEY_SIZE_RANGE (wrap).

use aes::cipher::KeyInit;
use aes_kw::{AesKw, AesKwp};
use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::sym::{Bytes, SymCipher, with_aes};
use crate::error::{Result, err};

/// Which of the two modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kw {
    /// RFC 3394: input a multiple of 8 bytes, at least 16.
    Plain,
    /// RFC 5649: any non-empty input.
    Pad,
}

impl Kw {
    pub fn of(mech: CK_MECHANISM_TYPE) -> Option<Kw> {
        match mech {
            CKM_AES_KEY_WRAP => Some(Kw::Plain),
            CKM_AES_KEY_WRAP_PAD => Some(Kw::Pad),
            _ => None,
        }
    }
}

pub fn wrap(kek: &[u8], mode: Kw, key: &[u8]) -> Result<Vec<u8>> {
    let ok = match mode {
        Kw::Plain => key.len() >= 16 && key.len().is_multiple_of(8),
        Kw::Pad => !key.is_empty(),
    };
    if !ok {
        return Err(err(CKR_KEY_SIZE_RANGE));
    }
    let mut out = vec![0u8; key.len().div_ceil(8) * 8 + 8];
    let n = with_aes!(kek.len(), A => {
        let r = match mode {
            Kw::Plain => AesKw::<A>::new_from_slice(kek).map_err(|_| err(CKR_KEY_SIZE_RANGE))?
                .wrap_key(key, &mut out).map(|w| w.len()),
            Kw::Pad => AesKwp::<A>::new_from_slice(kek).map_err(|_| err(CKR_KEY_SIZE_RANGE))?
                .wrap_key(key, &mut out).map(|w| w.len()),
        };
        r.map_err(|_| err(CKR_KEY_SIZE_RANGE))
    })?;
    out.truncate(n);
    Ok(out)
}

pub fn unwrap(kek: &[u8], mode: Kw, wrapped: &[u8]) -> Result<Bytes> {
    if wrapped.len() < 16 || !wrapped.len().is_multiple_of(8) {
        return Err(err(CKR_WRAPPED_KEY_LEN_RANGE));
    }
    let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
    let n = with_aes!(kek.len(), A => {
        let r = match mode {
            Kw::Plain => AesKw::<A>::new_from_slice(kek).map_err(|_| err(CKR_KEY_SIZE_RANGE))?
                .unwrap_key(wrapped, &mut out).map(|k| k.len()),
            Kw::Pad => AesKwp::<A>::new_from_slice(kek).map_err(|_| err(CKR_KEY_SIZE_RANGE))?
                .unwrap_key(wrapped, &mut out).map(|k| k.len()),
        };
        r.map_err(|_| err(CKR_WRAPPED_KEY_INVALID))
    })?;
    out.truncate(n);
    Ok(out)
}

struct KwOp {
    kek: Bytes,
    mode: Kw,
    encrypt: bool,
    buf: Bytes,
}

impl SymCipher for KwOp {
    fn update(&mut self, data: &[u8]) -> Result<Bytes> {
        self.buf.extend_from_slice(data);
        Ok(Bytes::default())
    }

    fn finish(&mut self) -> Result<Bytes> {
        let data = Zeroizing::new(std::mem::take(&mut *self.buf));
        if self.encrypt {
            wrap(&self.kek, self.mode, &data)
                .map(Zeroizing::new)
                .map_err(|_| err(CKR_DATA_LEN_RANGE))
        } else {
            unwrap(&self.kek, self.mode, &data).map_err(|e| match e.rv() {
                CKR_WRAPPED_KEY_LEN_RANGE => err(CKR_ENCRYPTED_DATA_LEN_RANGE),
                _ => err(CKR_ENCRYPTED_DATA_INVALID),
            })
        }
    }
}

/// C_Encrypt/C_Decrypt with a key-wrap mechanism.
pub fn cipher(kek: Bytes, mode: Kw, encrypt: bool) -> Result<Box<dyn SymCipher>> {
    if !matches!(kek.len(), 16 | 24 | 32) {
        return Err(err(CKR_KEY_SIZE_RANGE));
    }
    Ok(Box::new(KwOp {
        kek,
        mode,
        encrypt,
        buf: Bytes::default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::sym::unhex;

    // RFC 3394 §4.1 and §4.6; RFC 5649 §6 (both examples).
    #[test]
    fn rfc_known_answers() {
        let kek = unhex("000102030405060708090A0B0C0D0E0F");
        let key = unhex("00112233445566778899AABBCCDDEEFF");
        let w = wrap(&kek, Kw::Plain, &key).unwrap();
        assert_eq!(w, unhex("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"));
        assert_eq!(&unwrap(&kek, Kw::Plain, &w).unwrap()[..], &key[..]);
        let kek = unhex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
        let key = unhex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
        assert_eq!(
            wrap(&kek, Kw::Plain, &key).unwrap(),
            unhex(
                "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"
            )
        );
        let kek = unhex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
        for (key, wrapped) in [
            (
                "c37b7e6492584340bed12207808941155068f738",
                "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
            ),
            ("466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"),
        ] {
            let w = wrap(&kek, Kw::Pad, &unhex(key)).unwrap();
            assert_eq!(w, unhex(wrapped));
            assert_eq!(&unwrap(&kek, Kw::Pad, &w).unwrap()[..], &unhex(key)[..]);
        }
    }

    #[test]
    fn failures() {
        let kek = [4u8; 16];
        let w = wrap(&kek, Kw::Plain, &[1; 24]).unwrap();
        let mut bad = w.clone();
        bad[3] ^= 1;
        assert_eq!(
            unwrap(&kek, Kw::Plain, &bad).unwrap_err().rv(),
            CKR_WRAPPED_KEY_INVALID
        );
        assert_eq!(
            unwrap(&kek, Kw::Plain, &w[..20]).unwrap_err().rv(),
            CKR_WRAPPED_KEY_LEN_RANGE
        );
        assert_eq!(
            wrap(&kek, Kw::Plain, &[1; 20]).unwrap_err().rv(),
            CKR_KEY_SIZE_RANGE
        );
        assert_eq!(
            wrap(&kek, Kw::Pad, &[]).unwrap_err().rv(),
            CKR_KEY_SIZE_RANGE
        );
        // As C_Encrypt/C_Decrypt.
        let mut e = cipher(Zeroizing::new(kek.to_vec()), Kw::Pad, true).unwrap();
        assert!(e.update(b"seven b").unwrap().is_empty());
        let w = e.finish().unwrap();
        assert_eq!(w.len(), 16);
        let mut d = cipher(Zeroizing::new(kek.to_vec()), Kw::Pad, false).unwrap();
        d.update(&w).unwrap();
        assert_eq!(&d.finish().unwrap()[..], b"seven b");
        let mut d = cipher(Zeroizing::new(kek.to_vec()), Kw::Pad, false).unwrap();
        d.update(&[0; 16]).unwrap();
        assert_eq!(d.finish().unwrap_err().rv(), CKR_ENCRYPTED_DATA_INVALID);
    }
}
