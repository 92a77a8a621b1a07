//! RFC 9497 §2.2 DLEQ proofs, batch size one: a proof that log_G(pk) = log_B(Z) for one
//! blinded element B and its evaluation Z (Chaum–Pedersen, Fiat–Shamir with HashToScalar).
//!
//! GenerateProof uses ComputeCompositesFast (Z composite = k·M) and runs in constant time in
//! k and the nonce: only scalar multiplications and additions of curve25519-dalek, which are
//! constant time. VerifyProof uses ComputeComposites on public values.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use subtle::ConstantTimeEq;

use super::group::{CONTEXT, ELEMENT_LEN, Element, SCALAR_LEN, hash_to_scalar, scalar_from_bytes};
use crate::{Error, Result};

pub const PROOF_LEN: usize = 2 * SCALAR_LEN;

const ELEM_LEN_BE: [u8; 2] = (ELEMENT_LEN as u16).to_be_bytes();

/// A DLEQ proof (c, s), encoded as c ‖ s, each a canonical little-endian scalar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proof {
    c: Scalar,
    s: Scalar,
}

impl Proof {
    pub fn to_bytes(&self) -> [u8; PROOF_LEN] {
        let mut out = [0u8; PROOF_LEN];
        out[..SCALAR_LEN].copy_from_slice(self.c.as_bytes());
        out[SCALAR_LEN..].copy_from_slice(self.s.as_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Proof> {
        if bytes.len() != PROOF_LEN {
            return Err(Error::InvalidInput("a proof is 64 bytes"));
        }
        Ok(Proof {
            c: scalar_from_bytes(&bytes[..SCALAR_LEN])?,
            s: scalar_from_bytes(&bytes[SCALAR_LEN..])?,
        })
    }
}

/// ComputeComposites for one pair: d₀ = HashToScalar(seed ‖ 0 ‖ C ‖ D ‖ "Composite"),
/// M = d₀·C; Z is d₀·D (verifier) or k·M (prover, `k` given).
fn composites(
    pk: &Element,
    blinded: &Element,
    evaluated: &Element,
    k: Option<&Scalar>,
) -> (RistrettoPoint, RistrettoPoint) {
    use sha2::{Digest, Sha512};
    let bm = pk.to_bytes();
    let seed_dst_len = ((b"Seed-".len() + CONTEXT.len()) as u16).to_be_bytes();
    let seed = Sha512::new()
        .chain_update(ELEM_LEN_BE)
        .chain_update(bm)
        .chain_update(seed_dst_len)
        .chain_update(b"Seed-")
        .chain_update(CONTEXT)
        .finalize();
    let seed_len = (seed.len() as u16).to_be_bytes();
    let d0 = hash_to_scalar(&[
        &seed_len,
        &seed,
        &0u16.to_be_bytes(),
        &ELEM_LEN_BE,
        &blinded.to_bytes(),
        &ELEM_LEN_BE,
        &evaluated.to_bytes(),
        b"Composite",
    ]);
    let m = d0 * blinded.0;
    let z = match k {
        Some(k) => k * m,
        None => d0 * evaluated.0,
    };
    (m, z)
}

fn challenge(
    pk: &Element,
    m: &RistrettoPoint,
    z: &RistrettoPoint,
    t2: &RistrettoPoint,
    t3: &RistrettoPoint,
) -> Scalar {
    hash_to_scalar(&[
        &ELEM_LEN_BE,
        &pk.to_bytes(),
        &ELEM_LEN_BE,
        m.compress().as_bytes(),
        &ELEM_LEN_BE,
        z.compress().as_bytes(),
        &ELEM_LEN_BE,
        t2.compress().as_bytes(),
        &ELEM_LEN_BE,
        t3.compress().as_bytes(),
        b"Challenge",
    ])
}

/// GenerateProof(k, G, pk, [blinded], [evaluated]) with nonce `r`.
pub(crate) fn generate(
    k: &Scalar,
    r: &Scalar,
    pk: &Element,
    blinded: &Element,
    evaluated: &Element,
) -> Proof {
    let (m, z) = composites(pk, blinded, evaluated, Some(k));
    let t2 = r * RISTRETTO_BASEPOINT_POINT;
    let t3 = r * m;
    let c = challenge(pk, &m, &z, &t2, &t3);
    Proof { c, s: r - c * k }
}

/// VerifyProof(G, pk, [blinded], [evaluated], proof).
pub fn verify(pk: &Element, blinded: &Element, evaluated: &Element, proof: &Proof) -> Result<()> {
    let (m, z) = composites(pk, blinded, evaluated, None);
    let t2 = proof.s * RISTRETTO_BASEPOINT_POINT + proof.c * pk.0;
    let t3 = proof.s * m + proof.c * z;
    let c = challenge(pk, &m, &z, &t2, &t3);
    if bool::from(c.ct_eq(&proof.c)) {
        Ok(())
    } else {
        Err(Error::VerifyFailed)
    }
}
