//! Prime generation for Paillier keys: crypto-primes driven by a `KeygenRng`.

use std::convert::Infallible;

use crypto_bigint::BoxedUint;
use rand_core::{TryCryptoRng, TryRng};

use crate::keygen::KeygenRng;

use super::{PaillierError, Result};

/// rand_core's infallible RNG interface over a fallible `KeygenRng`: a failure is remembered
/// (the bytes read meanwhile are zeros) and reported after the generator returns, whose
/// output is then discarded.
struct Adapter<'a> {
    rng: &'a mut dyn KeygenRng,
    failed: bool,
}

impl TryRng for Adapter<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> std::result::Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> std::result::Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> std::result::Result<(), Infallible> {
        if self.rng.fill(dst).is_err() {
            self.failed = true;
            dst.fill(0);
        }
        Ok(())
    }
}

impl TryCryptoRng for Adapter<'_> {}

/// A random prime of exactly `bits` bits (top bit set).
pub(super) fn random_prime(rng: &mut dyn KeygenRng, bits: u32) -> Result<BoxedUint> {
    let mut a = Adapter { rng, failed: false };
    let p: BoxedUint = crypto_primes::random_prime(&mut a, crypto_primes::Flavor::Any, bits);
    if a.failed {
        return Err(PaillierError::Random);
    }
    Ok(p)
}
