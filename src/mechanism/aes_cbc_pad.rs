//! CKM_AES_CBC_PAD: CBC with PKCS#7 padding (the `cbc` crate), single- and multi-part.
//! Multi-part encryption emits whole blocks as they fill; decryption holds back the last
//! block until C_DecryptFinal, where the padding is checked.

use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt};
use aes::cipher::{InnerIvInit, KeyInit, consts::U16};
use cryptoki_sys::*;
use subtle::{ConstantTimeEq, ConstantTimeLess};
use zeroize::Zeroizing;

use super::sym::{Bytes, SymCipher, with_aes};
use crate::error::{Result, err};

const BLOCK: usize = 16;

struct Enc<C: BlockCipherEncrypt<BlockSize = U16>> {
    mode: cbc::Encryptor<C>,
    buf: Bytes,
}

struct Dec<C: BlockCipherDecrypt<BlockSize = U16>> {
    mode: cbc::Decryptor<C>,
    buf: Bytes,
}

fn blocks_of(buf: &mut [u8]) -> impl Iterator<Item = &mut aes::Block> {
    buf.chunks_exact_mut(BLOCK)
        .filter_map(|c| <&mut aes::Block>::try_from(c).ok())
}

impl<C: BlockCipherEncrypt<BlockSize = U16> + Send> SymCipher for Enc<C> {
    fn update(&mut self, data: &[u8]) -> Result<Bytes> {
        self.buf.extend_from_slice(data);
        let n = self.buf.len() / BLOCK * BLOCK;
        let mut out = Zeroizing::new(self.buf[..n].to_vec());
        self.buf.drain(..n);
        for b in blocks_of(&mut out) {
            self.mode.encrypt_block(b);
        }
        Ok(out)
    }

    fn finish(&mut self) -> Result<Bytes> {
        let pad = BLOCK - self.buf.len();
        let mut out = Zeroizing::new(std::mem::take(&mut *self.buf));
        out.resize(BLOCK, pad as u8);
        for b in blocks_of(&mut out) {
            self.mode.encrypt_block(b);
        }
        Ok(out)
    }
}

impl<C: BlockCipherDecrypt<BlockSize = U16> + Send> SymCipher for Dec<C> {
    fn update(&mut self, data: &[u8]) -> Result<Bytes> {
        self.buf.extend_from_slice(data);
        // Keep the last whole block back: it carries the padding.
        let n = self.buf.len().saturating_sub(1) / BLOCK * BLOCK;
        let mut out = Zeroizing::new(self.buf[..n].to_vec());
        self.buf.drain(..n);
        for b in blocks_of(&mut out) {
            self.mode.decrypt_block(b);
        }
        Ok(out)
    }

    fn finish(&mut self) -> Result<Bytes> {
        if self.buf.len() != BLOCK {
            return Err(err(CKR_ENCRYPTED_DATA_LEN_RANGE));
        }
        let mut last = Zeroizing::new(std::mem::take(&mut *self.buf));
        for b in blocks_of(&mut last) {
            self.mode.decrypt_block(b);
        }
        let keep = unpad(&last)?;
        last.truncate(keep);
        Ok(last)
    }
}

/// The plaintext length of a decrypted last block, checking its PKCS#7 padding without
/// branching on the padding bytes (a padding oracle must not be a timing oracle either).
fn unpad(block: &[u8]) -> Result<usize> {
    let p = block[BLOCK - 1];
    let mut ok = !p.ct_eq(&0) & p.ct_lt(&(BLOCK as u8 + 1));
    for (i, b) in block.iter().enumerate() {
        let in_pad = !(i as u8).ct_lt(&(BLOCK as u8).wrapping_sub(p));
        ok &= !in_pad | b.ct_eq(&p);
    }
    if bool::from(ok) {
        Ok(BLOCK - p as usize)
    } else {
        Err(err(CKR_ENCRYPTED_DATA_INVALID))
    }
}

fn iv(iv: &[u8]) -> Result<&aes::Block> {
    <&aes::Block>::try_from(iv).map_err(|_| {
        tracing::debug!("CBC IV must be 16 bytes");
        err(CKR_MECHANISM_PARAM_INVALID)
    })
}

pub fn encryptor(key: &[u8], iv_bytes: &[u8]) -> Result<Box<dyn SymCipher>> {
    let iv = iv(iv_bytes)?;
    with_aes!(key.len(), A => {
        let c = A::new_from_slice(key).map_err(|_| err(CKR_KEY_SIZE_RANGE))?;
        Ok(Box::new(Enc { mode: cbc::Encryptor::inner_iv_init(c, iv), buf: Bytes::default() }) as Box<dyn SymCipher>)
    })
}

pub fn decryptor(key: &[u8], iv_bytes: &[u8]) -> Result<Box<dyn SymCipher>> {
    let iv = iv(iv_bytes)?;
    with_aes!(key.len(), A => {
        let c = A::new_from_slice(key).map_err(|_| err(CKR_KEY_SIZE_RANGE))?;
        Ok(Box::new(Dec { mode: cbc::Decryptor::inner_iv_init(c, iv), buf: Bytes::default() }) as Box<dyn SymCipher>)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::sym::unhex;

    fn run(mut op: Box<dyn SymCipher>, data: &[u8], chunk: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for c in data.chunks(chunk.max(1)) {
            out.extend_from_slice(&op.update(c)?);
        }
        out.extend_from_slice(&op.finish()?);
        Ok(out)
    }

    // NIST SP 800-38A F.2.1/F.2.5 (CBC-AES128/256.Encrypt), first two blocks; then the
    // PKCS#7 block our mechanism appends (checked against `cbc`'s own padded encryption).
    #[test]
    fn sp800_38a_known_answers() {
        let pt = unhex("6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51");
        let iv = unhex("000102030405060708090a0b0c0d0e0f");
        for (key, ct) in [
            (
                "2b7e151628aed2a6abf7158809cf4f3c",
                "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2",
            ),
            (
                "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
                "f58c4c04d6e5f1ba779eabfb5f7bfbd6 9cfc4e967edb808d679f777bc6702c7d",
            ),
        ] {
            let key = unhex(key);
            let out = run(encryptor(&key, &iv).unwrap(), &pt, 32).unwrap();
            assert_eq!(out.len(), 48);
            assert_eq!(out[..32], unhex(ct)[..]);
            let back = run(decryptor(&key, &iv).unwrap(), &out, 48).unwrap();
            assert_eq!(back, pt);
        }
    }

    #[test]
    fn multipart_equals_single_part_for_every_split() {
        let key = [7u8; 24];
        let iv = [9u8; 16];
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 100] {
            let data: Vec<u8> = (0..len as u8).collect();
            let single = run(encryptor(&key, &iv).unwrap(), &data, len).unwrap();
            assert_eq!(single.len(), (len / 16 + 1) * 16);
            for chunk in [1, 5, 16, 17] {
                assert_eq!(
                    run(encryptor(&key, &iv).unwrap(), &data, chunk).unwrap(),
                    single
                );
                let back = run(decryptor(&key, &iv).unwrap(), &single, chunk).unwrap();
                assert_eq!(back, data);
            }
        }
    }

    #[test]
    fn bad_padding_and_lengths() {
        let key = [1u8; 16];
        let iv = [2u8; 16];
        let ct = run(encryptor(&key, &iv).unwrap(), b"hello", 5).unwrap();
        let mut bad = ct.clone();
        bad[15] ^= 1; // changes the padding byte of the only block... via CBC, the IV side
        let mut tampered_iv = iv;
        tampered_iv[15] ^= 0x20; // last plaintext byte (the pad value) becomes invalid
        assert_eq!(
            run(decryptor(&key, &tampered_iv).unwrap(), &ct, 16)
                .unwrap_err()
                .rv(),
            CKR_ENCRYPTED_DATA_INVALID
        );
        assert_eq!(
            run(decryptor(&key, &iv).unwrap(), &ct[..15], 15)
                .unwrap_err()
                .rv(),
            CKR_ENCRYPTED_DATA_LEN_RANGE
        );
        assert_eq!(
            run(decryptor(&key, &iv).unwrap(), &[], 1).unwrap_err().rv(),
            CKR_ENCRYPTED_DATA_LEN_RANGE
        );
        assert!(run(decryptor(&key, &iv).unwrap(), &bad, 16).is_err());
        assert_eq!(
            encryptor(&key, &iv[..8]).err().unwrap().rv(),
            CKR_MECHANISM_PARAM_INVALID
        );
        assert_eq!(
            encryptor(&[0; 20], &iv).err().unwrap().rv(),
            CKR_KEY_SIZE_RANGE
        );
    }

    #[test]
    fn unpad_accepts_exactly_pkcs7() {
        let mut b = [0u8; 16];
        for p in 1..=16u8 {
            b[16 - p as usize..].fill(p);
            assert_eq!(unpad(&b).unwrap(), 16 - p as usize);
        }
        b[15] = 0;
        assert!(unpad(&b).is_err());
        b[15] = 17;
        assert!(unpad(&b).is_err());
        b = [3; 16];
        b[13] = 2;
        assert!(unpad(&b).is_err());
    }
}
