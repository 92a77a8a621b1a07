//! Blinding factors for the module's private-key operations (CRYPTO-NOTES §2.1), made ahead
//! of the operation that uses them.
//!
//! A pair (ρ^e, ρ⁻¹) for a fresh random ρ ∈ Z_N^* costs a constant-time modular inversion and
//! a public exponentiation — most of the module's own arithmetic before the fan-out. Nothing
//! in it depends on the message, so it can be computed while an earlier operation waits for
//! the cells and kept in a small per-key [`BlindingPool`]. A pair is taken by value and
//! consumed by `rsa_combine::blind_with`: it is used for exactly one input, never twice, and
//! zeroized when dropped.

use std::sync::Mutex;

use crypto_bigint::modular::BoxedMontyForm;
use crypto_bigint::{BoxedUint, CtLt};
use zeroize::{Zeroize, Zeroizing};

use crate::rsa_public::RsaPublic;
use crate::{Error, Result, random};

/// Fresh ρ candidates tried before giving up: each is accepted with probability > 1/2
/// (ρ < N and invertible), so running out means the RNG is broken.
const MAX_BLIND_TRIES: usize = 128;

/// ρ^e and ρ⁻¹ mod N for one fresh random ρ (secret; not `Clone`, so used once).
pub struct BlindingPair {
    pub(crate) rho_e: BoxedMontyForm,
    pub(crate) rho_inv: BoxedMontyForm,
}

impl Drop for BlindingPair {
    fn drop(&mut self) {
        self.rho_e.zeroize();
        self.rho_inv.zeroize();
    }
}

impl std::fmt::Debug for BlindingPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindingPair([redacted])")
    }
}

impl BlindingPair {
    /// A fresh pair for `key`, every step in constant time (ρ is secret).
    pub fn new(key: &RsaPublic) -> Result<Self> {
        let (rho, rho_inv) = random_unit(key)?;
        Ok(BlindingPair {
            rho_e: key.pow_e(&rho),
            rho_inv,
        })
    }

    /// Whether the pair was made for `key`'s modulus.
    pub(crate) fn belongs_to(&self, key: &RsaPublic) -> bool {
        self.rho_e.params() == &key.modulus.params
    }
}

/// A uniformly random ρ ∈ Z_N^* and its inverse, both computed in constant time.
fn random_unit(key: &RsaPublic) -> Result<(Zeroizing<BoxedMontyForm>, BoxedMontyForm)> {
    let m = &key.modulus;
    let top_mask = 0xffu8 >> (8 * m.len - m.bits);
    for _ in 0..MAX_BLIND_TRIES {
        let mut buf = Zeroizing::new(vec![0u8; m.len]);
        random::fill(&mut buf)?;
        buf[0] &= top_mask;
        let cand = Zeroizing::new(
            BoxedUint::from_be_slice(&buf, m.precision()).map_err(|_| Error::Random)?,
        );
        // Rejection sampling: only a rejected candidate's fate is revealed, never ρ.
        if !bool::from(cand.ct_lt(m.n())) || bool::from(cand.is_zero()) {
            continue;
        }
        let rho = Zeroizing::new(m.monty(BoxedUint::clone(&cand)));
        let inv = rho.invert();
        if inv.is_some().to_bool() {
            return Ok((rho, inv.unwrap()));
        }
    }
    Err(Error::Random)
}

/// Up to `capacity` pairs for one key, made between operations.
///
/// Pairs leave the pool by value ([`take`](Self::take)), so none is handed out twice. The pool
/// remembers the process that filled it: after a `fork` the child would otherwise share the
/// parent's ρ values, so a pool filled by another process is emptied instead of served.
pub struct BlindingPool {
    key: RsaPublic,
    capacity: usize,
    inner: Mutex<Filled>,
}

struct Filled {
    pid: u32,
    pairs: Vec<BlindingPair>,
}

impl std::fmt::Debug for BlindingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlindingPool")
            .field("bits", &self.key.bits())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl BlindingPool {
    /// An empty pool for `key` holding at most `capacity` pairs.
    pub fn new(key: RsaPublic, capacity: usize) -> Self {
        BlindingPool {
            key,
            capacity,
            inner: Mutex::new(Filled {
                pid: std::process::id(),
                pairs: Vec::new(),
            }),
        }
    }

    pub fn key(&self) -> &RsaPublic {
        &self.key
    }

    /// Pairs ready now.
    pub fn len(&self) -> usize {
        self.lock().pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A pair made in advance if there is one, else a fresh one made now.
    pub fn take(&self) -> Result<BlindingPair> {
        match self.lock().pairs.pop() {
            Some(pair) => Ok(pair),
            None => BlindingPair::new(&self.key),
        }
    }

    /// Make pairs until the pool is full, at most `max` of them (the lock is not held while
    /// computing, so operations can take pairs meanwhile). Returns how many were added.
    pub fn refill(&self, max: usize) -> Result<usize> {
        let mut added = 0;
        while added < max && self.len() < self.capacity {
            let pair = BlindingPair::new(&self.key)?;
            let mut filled = self.lock();
            if filled.pairs.len() >= self.capacity {
                break;
            }
            filled.pairs.push(pair);
            added += 1;
        }
        Ok(added)
    }

    /// The pairs, emptied first if another process (a fork's parent) made them.
    fn lock(&self) -> std::sync::MutexGuard<'_, Filled> {
        let mut filled = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let pid = std::process::id();
        if filled.pid != pid {
            filled.pairs.clear();
            filled.pid = pid;
        }
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RsaPublic {
        // A fixed odd 1024-bit modulus (its factors are irrelevant: only units mod N are used).
        let mut n = vec![0xc5u8; 128];
        for (i, b) in n.iter_mut().enumerate() {
            *b ^= (i as u8).wrapping_mul(37);
        }
        n[0] |= 0x80;
        n[127] |= 1;
        RsaPublic::new(&n, &[1, 0, 1]).unwrap()
    }

    fn bytes(key: &RsaPublic, v: &BoxedMontyForm) -> Vec<u8> {
        key.modulus.to_bytes(v)
    }

    #[test]
    fn a_pair_is_rho_to_the_e_and_rho_inverse() {
        let k = key();
        let pair = BlindingPair::new(&k).unwrap();
        // (ρ⁻¹)^e · ρ^e = 1.
        let one = k.pow_e(&pair.rho_inv).mul(&pair.rho_e);
        assert_eq!(
            bytes(&k, &one),
            bytes(&k, &BoxedMontyForm::one(&k.modulus.params))
        );
        assert!(pair.belongs_to(&k));
    }

    #[test]
    fn pooled_pairs_are_never_handed_out_twice() {
        let k = key();
        let pool = BlindingPool::new(k.clone(), 4);
        assert!(pool.is_empty());
        assert_eq!(pool.refill(10).unwrap(), 4);
        assert_eq!(pool.len(), 4);
        assert_eq!(pool.refill(10).unwrap(), 0, "a full pool makes nothing");
        let mut seen = Vec::new();
        for left in (0..4).rev() {
            let pair = pool.take().unwrap();
            assert_eq!(pool.len(), left, "a taken pair leaves the pool");
            seen.push(bytes(&k, &pair.rho_inv));
        }
        // Empty: take makes a fresh pair rather than reusing one.
        seen.push(bytes(&k, &pool.take().unwrap().rho_inv));
        assert_eq!(pool.refill(2).unwrap(), 2);
        seen.push(bytes(&k, &pool.take().unwrap().rho_inv));
        seen.push(bytes(&k, &pool.take().unwrap().rho_inv));
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            seen.len(),
            "every pair handed out is distinct"
        );
    }

    #[test]
    fn a_pool_filled_by_another_process_is_emptied() {
        let pool = BlindingPool::new(key(), 2);
        pool.refill(2).unwrap();
        pool.inner.lock().unwrap().pid ^= 1;
        assert_eq!(pool.len(), 0);
    }
}
