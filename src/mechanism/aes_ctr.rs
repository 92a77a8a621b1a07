//! CKM_AES_CTR (CK_AES_CTR_PARAMS): the `ctr` crate's 128-bit big-endian counter. The
//! parameters name how many low bits of the counter block count (1..=128); the mechanism
//! refuses any input that would make those bits wrap (CKR_DATA_LEN_RANGE), so within what it
//! accepts a full 128-bit increment equals the spec's increment of the low bits.

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::sym::{Bytes, SymCipher, with_aes};
use crate::error::{Result, err};

struct Ctr<S: StreamCipher> {
    stream: S,
    /// Bytes the counter still allows (None: more than any input can reach).
    left: Option<u128>,
}

impl<S: StreamCipher + Send> SymCipher for Ctr<S> {
    fn update(&mut self, data: &[u8]) -> Result<Bytes> {
        if let Some(left) = self.left.as_mut() {
            let n = data.len() as u128;
            if n > *left {
                tracing::debug!("CTR input would wrap the counter");
                return Err(err(CKR_DATA_LEN_RANGE));
            }
            *left -= n;
        }
        let mut out = Zeroizing::new(data.to_vec());
        self.stream.apply_keystream(&mut out);
        Ok(out)
    }

    fn finish(&mut self) -> Result<Bytes> {
        Ok(Bytes::default())
    }
}

/// How many bytes of keystream the counter block allows before its low `bits` wrap.
fn allowance(counter_bits: usize, cb: &[u8; 16]) -> Result<Option<u128>> {
    if counter_bits == 0 || counter_bits > 128 {
        tracing::debug!(counter_bits, "CTR counter bits out of range");
        return Err(err(CKR_MECHANISM_PARAM_INVALID));
    }
    if counter_bits >= 100 {
        return Ok(None);
    }
    let mask = (1u128 << counter_bits) - 1;
    let blocks = (1u128 << counter_bits) - (u128::from_be_bytes(*cb) & mask);
    Ok(Some(blocks * 16))
}

/// CTR is its own inverse: the same operation encrypts and decrypts.
pub fn cipher(key: &[u8], counter_bits: usize, cb: &[u8; 16]) -> Result<Box<dyn SymCipher>> {
    let left = allowance(counter_bits, cb)?;
    with_aes!(key.len(), A => {
        let c = A::new_from_slice(key).map_err(|_| err(CKR_KEY_SIZE_RANGE))?;
        let stream = ctr::Ctr128BE::<A>::from_core(ctr::CtrCore::inner_iv_init(c, cb.into()));
        Ok(Box::new(Ctr { stream, left }) as Box<dyn SymCipher>)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::sym::unhex;

    fn run(key: &[u8], bits: usize, cb: &[u8; 16], data: &[u8], chunk: usize) -> Result<Vec<u8>> {
        let mut op = cipher(key, bits, cb)?;
        let mut out = Vec::new();
        for c in data.chunks(chunk.max(1)) {
            out.extend_from_slice(&op.update(c)?);
        }
        out.extend_from_slice(&op.finish()?);
        Ok(out)
    }

    // NIST SP 800-38A F.5.1 (CTR-AES128.Encrypt) and F.5.5 (CTR-AES256), two blocks.
    #[test]
    fn sp800_38a_known_answers() {
        let cb: [u8; 16] = unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
            .try_into()
            .unwrap();
        let pt = unhex("6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51");
        for (key, ct) in [
            (
                "2b7e151628aed2a6abf7158809cf4f3c",
                "874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff",
            ),
            (
                "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
                "601ec313775789a5b7a7f504bbf3d228 f443e3ca4d62b59aca84e990cacaf5c5",
            ),
        ] {
            let key = unhex(key);
            assert_eq!(run(&key, 128, &cb, &pt, 32).unwrap(), unhex(ct));
            assert_eq!(run(&key, 128, &cb, &pt, 7).unwrap(), unhex(ct));
            assert_eq!(run(&key, 128, &cb, &unhex(ct), 5).unwrap(), pt);
        }
    }

    #[test]
    fn counter_bits_limit_the_length() {
        let key = [3u8; 16];
        let mut cb = [0u8; 16];
        cb[15] = 0xfe; // two blocks left in an 8-bit counter
        assert_eq!(run(&key, 8, &cb, &[0; 32], 32).unwrap().len(), 32);
        assert_eq!(
            run(&key, 8, &cb, &[0; 33], 11).unwrap_err().rv(),
            CKR_DATA_LEN_RANGE
        );
        assert_eq!(
            cipher(&key, 0, &cb).err().unwrap().rv(),
            CKR_MECHANISM_PARAM_INVALID
        );
        assert_eq!(
            cipher(&key, 129, &cb).err().unwrap().rv(),
            CKR_MECHANISM_PARAM_INVALID
        );
    }
}
