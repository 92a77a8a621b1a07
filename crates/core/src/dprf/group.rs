//! The group side of RFC 9497's ristretto255-SHA512 suite: the context string, HashToGroup,
//! HashToScalar, and elements that decode only when canonical and not the identity.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;

use super::xmd::expand_64;
use crate::{Error, Result};

/// RFC 9497 §3.1: contextString = "OPRFV1-" ‖ I2OSP(mode, 1) ‖ "-" ‖ identifier. We use the
/// VOPRF mode (0x01): every cell is an RFC 9497 VOPRF server for its own share (module docs).
pub(crate) const CONTEXT: &[u8] = b"OPRFV1-\x01-ristretto255-SHA512";

pub const ELEMENT_LEN: usize = 32;
pub const SCALAR_LEN: usize = 32;

/// A ristretto255 element that is never the identity (RFC 9497 §2.1 DeserializeElement).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Element(pub(crate) RistrettoPoint);

impl Element {
    /// Decodes a canonical encoding of a non-identity element; anything else (wrong length,
    /// non-canonical, not on the group, the identity) is `InvalidInput`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Element> {
        let arr: [u8; ELEMENT_LEN] = bytes
            .try_into()
            .map_err(|_| Error::InvalidInput("a group element is 32 bytes"))?;
        let point = CompressedRistretto(arr)
            .decompress()
            .ok_or(Error::InvalidInput("not a canonical ristretto255 encoding"))?;
        Element::new(point)
    }

    pub(crate) fn new(point: RistrettoPoint) -> Result<Element> {
        if point == RistrettoPoint::identity() {
            return Err(Error::InvalidInput("the identity element"));
        }
        Ok(Element(point))
    }

    pub fn to_bytes(&self) -> [u8; ELEMENT_LEN] {
        self.0.compress().to_bytes()
    }
}

/// RFC 9497 §4.1 HashToGroup: Elligator on expand_message_xmd(input, "HashToGroup-" ‖ ctx).
pub(crate) fn hash_to_group(input: &[u8]) -> Result<Element> {
    let uniform = expand_64(&[input], &[b"HashToGroup-", CONTEXT]);
    // The identity has negligible odds, but RFC 9497 Blind checks for it: so do we.
    Element::new(RistrettoPoint::from_uniform_bytes(&uniform))
}

/// RFC 9497 §4.1 HashToScalar: expand_message_xmd(msg, "HashToScalar-" ‖ ctx), 64 bytes
/// little-endian reduced mod ℓ.
pub(crate) fn hash_to_scalar(msg: &[&[u8]]) -> Scalar {
    let uniform = expand_64(msg, &[b"HashToScalar-", CONTEXT]);
    Scalar::from_bytes_mod_order_wide(&uniform)
}

/// A uniform non-zero scalar from OS randomness (64 bytes reduced: bias ≤ 2^-250).
pub(crate) fn random_scalar() -> Result<Scalar> {
    loop {
        let mut wide = zeroize::Zeroizing::new([0u8; 64]);
        crate::random::fill(&mut *wide)?;
        let s = Scalar::from_bytes_mod_order_wide(&wide);
        if s != Scalar::ZERO {
            return Ok(s);
        }
    }
}

/// A canonical scalar (< ℓ) from its 32-byte little-endian encoding.
pub(crate) fn scalar_from_bytes(bytes: &[u8]) -> Result<Scalar> {
    let arr: [u8; SCALAR_LEN] = bytes
        .try_into()
        .map_err(|_| Error::InvalidInput("a scalar is 32 bytes"))?;
    Option::from(Scalar::from_canonical_bytes(arr)).ok_or(Error::InvalidInput(
        "scalar not reduced mod the group order",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;

    #[test]
    fn elements_refuse_identity_non_canonical_and_wrong_length() {
        assert!(Element::from_bytes(&[0u8; 32]).is_err(), "identity");
        assert!(Element::from_bytes(&[0u8; 31]).is_err());
        // 2^255 − 1 is no field element's canonical encoding.
        let mut high = [0xffu8; 32];
        high[31] = 0x7f;
        assert!(Element::from_bytes(&high).is_err());
        // A negative field element (low bit set) is never a canonical ristretto encoding.
        let mut odd = RISTRETTO_BASEPOINT_POINT.compress().to_bytes();
        odd[0] |= 1;
        assert!(Element::from_bytes(&odd).is_err());
        let g = RISTRETTO_BASEPOINT_POINT.compress().to_bytes();
        assert_eq!(Element::from_bytes(&g).unwrap().to_bytes(), g);
    }

    #[test]
    fn scalars_must_be_canonical() {
        assert!(scalar_from_bytes(&[0xff; 32]).is_err());
        assert!(scalar_from_bytes(&[1; 31]).is_err());
        let s = random_scalar().unwrap();
        assert_eq!(scalar_from_bytes(s.as_bytes()).unwrap(), s);
    }
}
