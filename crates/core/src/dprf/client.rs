//! The module's side: Blind, then — once every cell's evaluation has been checked with
//! `proof::verify` — unblind the sum and Finalize (RFC 9497 §3.3.2).

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::group::{ELEMENT_LEN, Element, hash_to_group, random_scalar};
use super::share::PrfShare;
use crate::{Error, Result};

pub const OUTPUT_LEN: usize = 64;

/// The largest input: Finalize prefixes it with a two-byte length.
pub const MAX_INPUT_LEN: usize = u16::MAX as usize;

/// A blinded input: the input and the blind r, kept for Finalize. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Blinding {
    input: Vec<u8>,
    blind: Scalar,
    #[zeroize(skip)]
    blinded: Element,
}

impl std::fmt::Debug for Blinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blinding([redacted])")
    }
}

impl Blinding {
    /// RFC 9497 Blind: B = r·HashToGroup(input) with a fresh non-zero r.
    pub fn new(input: &[u8]) -> Result<Blinding> {
        Blinding::with_blind(input, random_scalar()?)
    }

    pub(crate) fn with_blind(input: &[u8], blind: Scalar) -> Result<Blinding> {
        if input.len() > MAX_INPUT_LEN {
            return Err(Error::InvalidInput("PRF input over 65535 bytes"));
        }
        let p = hash_to_group(input)?;
        let blinded = Element::new(blind * p.0)?;
        Ok(Blinding {
            input: input.to_vec(),
            blind,
            blinded,
        })
    }

    /// B, what every cell is sent.
    pub fn blinded(&self) -> &Element {
        &self.blinded
    }

    /// Σ Zᵢ (+ c·B for a customer share c), unblinded by r⁻¹, then RFC 9497 Finalize:
    /// SHA-512(I2OSP(len input, 2) ‖ input ‖ I2OSP(32, 2) ‖ Enc(k·H(input)) ‖ "Finalize").
    /// Call only with evaluations whose proofs verified.
    pub fn finalize<'a>(
        &self,
        evaluated: impl IntoIterator<Item = &'a Element>,
        customer: Option<&PrfShare>,
    ) -> Result<Zeroizing<[u8; OUTPUT_LEN]>> {
        // k·B and k·H(x) determine the output: neither outlives this call.
        let mut sum: Zeroizing<RistrettoPoint> =
            Zeroizing::new(evaluated.into_iter().map(|e| e.0).sum());
        if let Some(c) = customer {
            *sum += c.0 * self.blinded.0;
        }
        let r_inv = Zeroizing::new(self.blind.invert());
        let mut unblinded = Element::new(*r_inv * *sum)
            .map_err(|_| Error::InvalidInput("the evaluations sum to the identity"))?;
        let out = finalize_hash(&self.input, &unblinded);
        unblinded.0.zeroize();
        Ok(out)
    }
}

pub(crate) fn finalize_hash(input: &[u8], unblinded: &Element) -> Zeroizing<[u8; OUTPUT_LEN]> {
    let mut enc = Zeroizing::new(unblinded.to_bytes());
    let digest = Sha512::new()
        .chain_update((input.len() as u16).to_be_bytes())
        .chain_update(input)
        .chain_update((ELEMENT_LEN as u16).to_be_bytes())
        .chain_update(&enc[..])
        .chain_update(b"Finalize")
        .finalize();
    enc.zeroize();
    let mut out = Zeroizing::new([0u8; OUTPUT_LEN]);
    out.copy_from_slice(&digest);
    out
}

/// F_k(input) evaluated directly with the whole key (RFC 9497 Evaluate). Only tests and the
/// refresh check's oracles use it: the running system never holds k.
pub fn evaluate_whole(k: &PrfShare, input: &[u8]) -> Result<Zeroizing<[u8; OUTPUT_LEN]>> {
    if input.len() > MAX_INPUT_LEN {
        return Err(Error::InvalidInput("PRF input over 65535 bytes"));
    }
    let p = hash_to_group(input)?;
    let u = Element::new(k.0 * p.0)?;
    Ok(finalize_hash(input, &u))
}
