//! Randomness for key generation: the OS in production, a seeded ChaCha20 stream in tests.
//!
//! The seeded stream exists only with the non-default `test-seeded` feature, which only this
//! crate's own dev-dependency enables (tests and benches): a release build cannot reach it.

use crypto_bigint::{BoxedUint, NonZero};
use zeroize::Zeroizing;

use super::{KeygenError, Result};

/// Where a party's secrets come from.
pub trait KeygenRng {
    fn fill(&mut self, buf: &mut [u8]) -> Result<()>;
}

/// The operating system's CSPRNG (getrandom).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRng;

impl KeygenRng for OsRng {
    fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        crate::random::fill(buf).map_err(|_| KeygenError::Random)
    }
}

/// A reproducible candidate stream: ChaCha20 keyed by (seed, party). Tests and benches only.
#[cfg(feature = "test-seeded")]
pub struct SeededRng(chacha20::ChaCha20);

#[cfg(feature = "test-seeded")]
impl SeededRng {
    pub fn new(seed: u64, party: usize) -> Self {
        use chacha20::cipher::KeyIvInit;
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&(party as u64).to_le_bytes());
        key[16..].copy_from_slice(b"keyfrag-test-rng");
        SeededRng(chacha20::ChaCha20::new(&key.into(), &[0u8; 12].into()))
    }
}

#[cfg(feature = "test-seeded")]
impl KeygenRng for SeededRng {
    fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        use chacha20::cipher::StreamCipher;
        buf.fill(0);
        self.0.apply_keystream(buf);
        Ok(())
    }
}

/// Uniform integer in [0, bound) for a small public bound, in constant time: the high word of
/// x·bound for a 192-bit random x (Lemire's method without rejection). The bias is at most
/// bound/2^192, far below the 2^-128 the masks need (CRYPTO-NOTES §1.6).
pub(crate) fn uniform_small(rng: &mut dyn KeygenRng, bound: u64) -> Result<u64> {
    let mut buf = Zeroizing::new([0u8; 24]);
    rng.fill(&mut buf[..])?;
    let mut carry: u128 = 0;
    for chunk in buf.chunks_exact(8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        carry = ((w as u128) * (bound as u128) + carry) >> 64;
    }
    Ok(carry as u64)
}

/// Uniform in [0, 2^bits) at `precision` bits.
pub(crate) fn random_bits(
    rng: &mut dyn KeygenRng,
    bits: usize,
    precision: u32,
) -> Result<Zeroizing<BoxedUint>> {
    let len = bits.div_ceil(8);
    let mut buf = Zeroizing::new(vec![0u8; len]);
    rng.fill(&mut buf)?;
    if !bits.is_multiple_of(8) {
        buf[0] &= 0xff >> (8 - bits % 8);
    }
    BoxedUint::from_be_slice(&buf, precision)
        .map(Zeroizing::new)
        .map_err(|_| KeygenError::Params("random value wider than its precision"))
}

/// Uniform modulo m, statistically (128 extra bits, reduced in constant time).
pub(crate) fn uniform_mod(
    rng: &mut dyn KeygenRng,
    m: &NonZero<BoxedUint>,
) -> Result<Zeroizing<BoxedUint>> {
    let bits = m.as_ref().bit_width_vartime() as usize + 128;
    let wide = random_bits(rng, bits, bits as u32)?;
    Ok(Zeroizing::new(wide.rem(m)))
}
