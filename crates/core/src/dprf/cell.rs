//! A cell's side: RFC 9497 VOPRF BlindEvaluate with its own share, batch size one.

use curve25519_dalek::scalar::Scalar;
use zeroize::Zeroizing;

use super::group::{Element, random_scalar};
use super::proof::{self, Proof};
use super::share::PrfShare;
use crate::{Error, Result};

/// Zᵢ = kᵢ·B and a proof that log_G Kᵢ = log_B Zᵢ. `blinded` has already refused the identity
/// and non-canonical encodings (`Element::from_bytes`); the multiplication and the proof are
/// constant time in the share and the nonce.
pub fn evaluate(share: &PrfShare, blinded: &Element) -> Result<(Element, Proof)> {
    let r = Zeroizing::new(random_scalar()?);
    evaluate_with_nonce(share, blinded, &r)
}

pub(crate) fn evaluate_with_nonce(
    share: &PrfShare,
    blinded: &Element,
    r: &Scalar,
) -> Result<(Element, Proof)> {
    let pk = share
        .commitment()
        .ok_or(Error::InvalidInput("the zero share"))?;
    let evaluated = Element::new(share.0 * blinded.0)?;
    let proof = proof::generate(&share.0, r, &pk, blinded, &evaluated);
    Ok((evaluated, proof))
}
