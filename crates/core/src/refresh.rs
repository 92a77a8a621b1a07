//! Proactive refresh of additive RSA shares (CRYPTO-NOTES §2.4, docs/REFRESH.md), as pure
//! functions: no I/O, no storage, no relay. The cells seal what `Deal` produces to their
//! peers and sign the `CheckPartials` they compute.
//!
//! From epoch e to e + 1, party i deals δ_{i,j} for every party j, uniform of |N| + 128 bits
//! with a random sign for j ≠ i and δ_{i,i} = −Σ_{j≠i} δ_{i,j}; party j's pending share is
//! d_j' = d_j + Σ_i δ_{i,j}. Every row sums to zero, so Σ_j d_j' = Σ_j d_j: the key is the
//! same, every share is new, and shares of different epochs do not add up to d.
//!
//! The check: every party raises one public input x, derived by hash from the run (so nobody
//! chooses it), to twice its committed and its pending share. Π old = x^(2·Σd_j) and
//! Π pending = x^(2·Σd_j'), so the two products agree exactly when the pending shares sum
//! to what the committed ones do — which holds whether or not a customer share (constant
//! across refreshes) is part of the key, so the check needs no PIN.

use crypto_bigint::{BoxedUint, Gcd};

use crate::bigint::{Modulus, hash_below, to_fixed_be};
use crate::keygen::OsRng;
use crate::rsa_public::RsaPublic;
use crate::rsa_share::RsaShare;
use crate::secret::SecretBytes;
use crate::signed::{Signed, zero_sum_row};
use crate::{Error, Result};

/// Bits of statistical hiding of a delta above |N| (the issue's |N| + 128; CRYPTO-NOTES §2.4
/// L = |N| + λ).
pub const DELTA_HIDING_BITS: usize = 128;

/// Format of an encoded `CheckPartials`.
pub const CHECK_FORMAT: u8 = 1;

const CHECK_DOMAIN: &[u8] = b"keyfrag/refresh/v1/check";

/// Bits of a delta's magnitude for a key of `modulus_bits`.
pub fn delta_bits(modulus_bits: usize) -> usize {
    modulus_bits + DELTA_HIDING_BITS
}

/// Bytes of one encoded delta: a sign byte, then the magnitude at its fixed width.
pub fn delta_len(modulus_bits: usize) -> usize {
    1 + delta_bits(modulus_bits).div_ceil(8)
}

/// One party's deal in one refresh: its own delta (kept until its pending share is computed)
/// and the encoded delta for each peer (to be sealed to that peer). Zeroized on drop; Debug
/// prints nothing secret.
pub struct Deal {
    modulus_bits: usize,
    own: Signed,
    peers: Vec<(usize, SecretBytes)>,
}

impl std::fmt::Debug for Deal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deal")
            .field("modulus_bits", &self.modulus_bits)
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl Deal {
    /// Party `me` of `parties` (≥ 2) deals for a key of `modulus_bits`, from OS randomness.
    pub fn new(me: usize, parties: usize, modulus_bits: usize) -> Result<Deal> {
        if parties < 2 || me >= parties {
            return Err(Error::InvalidInput("refresh needs at least two parties"));
        }
        let row = zero_sum_row(
            &mut OsRng,
            me,
            parties,
            delta_bits(modulus_bits),
            modulus_bits,
        )?;
        let len = delta_len(modulus_bits) - 1;
        let mut own = None;
        let mut peers = Vec::with_capacity(parties - 1);
        for (j, delta) in row.into_iter().enumerate() {
            if j == me {
                own = Some(delta);
            } else {
                let mut body = Vec::with_capacity(len + 1);
                delta.encode(len, &mut body)?;
                peers.push((j, SecretBytes::new(body)));
            }
        }
        Ok(Deal {
            modulus_bits,
            own: own.ok_or(Error::InvalidInput("no own delta"))?,
            peers,
        })
    }

    /// The encoded delta for each peer, by party index.
    pub fn peers(&self) -> impl Iterator<Item = (usize, &SecretBytes)> {
        self.peers.iter().map(|(j, d)| (*j, d))
    }

    /// The pending share: `share` plus this party's own delta plus the delta each peer dealt
    /// to it (`received`: exactly one per peer, in any order). Fails on a malformed delta or
    /// if the sum no longer fits the fixed share width (it never does in practice: the
    /// width leaves 64 bits above |N| + 160 and each refresh adds ~|N| + 130-bit noise).
    pub fn apply(&self, share: &RsaShare, received: &[&[u8]]) -> Result<RsaShare> {
        if received.len() != self.peers.len() {
            return Err(Error::InvalidInput("one delta from every peer is needed"));
        }
        let w = Signed::width(self.modulus_bits);
        let mut sum = Signed::from_share(share, self.modulus_bits)?.add(&self.own);
        for body in received {
            if body.len() != delta_len(self.modulus_bits) {
                return Err(Error::InvalidInput("delta has the wrong length"));
            }
            sum = sum.add(&Signed::decode(body, w)?);
        }
        sum.to_share(self.modulus_bits)
    }
}

/// The public check input of one refresh run: a unit of Z_N other than ±1, hashed from the
/// key, the session and the epoch being left (big-endian, exactly len(N) bytes). Every cell
/// derives it alone, so nobody can choose it: the check partials (which need no login) are
/// therefore no signing or decryption oracle.
pub fn check_input(
    modulus: &[u8],
    key_uid: &str,
    session: &str,
    from_epoch: u64,
) -> Result<Vec<u8>> {
    let m = Modulus::parse(modulus)?;
    let one = BoxedUint::one_with_precision(m.precision());
    let n_minus_one = m.n().wrapping_sub(&one);
    for counter in 0u32..64 {
        let mut msg = Vec::with_capacity(key_uid.len() + session.len() + m.len + 32);
        for field in [key_uid.as_bytes(), session.as_bytes(), modulus] {
            msg.extend_from_slice(&(field.len() as u32).to_be_bytes());
            msg.extend_from_slice(field);
        }
        msg.extend_from_slice(&from_epoch.to_be_bytes());
        msg.extend_from_slice(&counter.to_be_bytes());
        let x = hash_below(CHECK_DOMAIN, &msg, m.n());
        let trivial = bool::from(x.is_zero()) || x == one || x == n_minus_one;
        if !trivial && x.gcd_vartime(m.n()) == one {
            return Ok(to_fixed_be(&x, m.len));
        }
    }
    // Reaching here means N has a tiny factor, i.e. it is not an RSA modulus.
    Err(Error::InvalidInput("no unit found modulo N"))
}

/// One party's check: its partials x^(2·d) under the committed and the pending share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckPartials {
    pub old: Vec<u8>,
    pub pending: Vec<u8>,
}

impl CheckPartials {
    /// format ‖ len:u16 ‖ old ‖ pending (both exactly len bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + 2 * self.old.len());
        out.push(CHECK_FORMAT);
        out.extend_from_slice(&(self.old.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.old);
        out.extend_from_slice(&self.pending);
        out
    }

    /// Strict: known format, both partials `modulus_len` bytes, nothing trailing.
    pub fn from_bytes(bytes: &[u8], modulus_len: usize) -> Result<CheckPartials> {
        let bad = Error::InvalidInput("malformed check partials");
        if bytes.len() != 3 + 2 * modulus_len || bytes[0] != CHECK_FORMAT {
            return Err(bad);
        }
        if usize::from(u16::from_be_bytes([bytes[1], bytes[2]])) != modulus_len {
            return Err(bad);
        }
        let (old, pending) = bytes[3..].split_at(modulus_len);
        Ok(CheckPartials {
            old: old.to_vec(),
            pending: pending.to_vec(),
        })
    }
}

/// Π old ≡ Π pending (mod N) over every party's check: the pending shares sum to what the
/// committed shares sum to (with overwhelming probability over the hashed input). Errors on
/// a malformed partial.
pub fn products_match(modulus: &[u8], checks: &[CheckPartials]) -> Result<bool> {
    if checks.is_empty() {
        return Err(Error::InvalidInput("no check partials"));
    }
    let m = Modulus::parse(modulus)?;
    let old = m.product(checks.iter().map(|c| c.old.as_slice()))?;
    let pending = m.product(checks.iter().map(|c| c.pending.as_slice()))?;
    Ok(old.retrieve() == pending.retrieve())
}

/// (Π partials)^e ≡ x² (mod N): partials x^(2·dᵢ) whose shares sum to the private exponent
/// of `key` (only meaningful when the cells hold the whole exponent, i.e. no customer share).
pub fn product_matches_key(key: &RsaPublic, x: &[u8], partials: &[&[u8]]) -> Result<bool> {
    let m = &key.modulus;
    let x = m
        .parse_below(x)
        .ok_or(Error::InvalidInput("check input not below the modulus"))?;
    let w = m.product(partials.iter().copied())?;
    Ok(key.pow_e(&w).retrieve() == m.monty(x).square().retrieve())
}
