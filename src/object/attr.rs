//! Typed, owned attributes parsed once at the edge.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::error::{Result, err};

/// One template attribute: its type and an owned copy of its value (zeroized on drop, since a
/// template may carry a private exponent). Debug prints the type and length only.
#[derive(Clone, PartialEq, Eq)]
pub struct Attribute {
    pub ty: CK_ATTRIBUTE_TYPE,
    pub value: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Attribute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Attribute({:#x}, {} bytes)", self.ty, self.value.len())
    }
}

impl Attribute {
    pub fn new(ty: CK_ATTRIBUTE_TYPE, value: Vec<u8>) -> Self {
        Attribute {
            ty,
            value: Zeroizing::new(value),
        }
    }

    #[cfg(test)]
    pub fn bool(ty: CK_ATTRIBUTE_TYPE, v: bool) -> Self {
        Attribute::new(ty, encode_bool(v))
    }

    #[cfg(test)]
    pub fn ulong(ty: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> Self {
        Attribute::new(ty, encode_ulong(v))
    }

    /// A CK_BBOOL: exactly one byte (else CKR_ATTRIBUTE_VALUE_INVALID).
    pub fn as_bool(&self) -> Result<bool> {
        decode_bool(&self.value).ok_or_else(|| {
            tracing::debug!(attribute = self.ty, "not a CK_BBOOL");
            err(CKR_ATTRIBUTE_VALUE_INVALID)
        })
    }

    /// A CK_ULONG: exactly sizeof(CK_ULONG) native-endian bytes.
    pub fn as_ulong(&self) -> Result<CK_ULONG> {
        decode_ulong(&self.value).ok_or_else(|| {
            tracing::debug!(attribute = self.ty, "not a CK_ULONG");
            err(CKR_ATTRIBUTE_VALUE_INVALID)
        })
    }
}

pub fn encode_bool(v: bool) -> Vec<u8> {
    vec![if v { CK_TRUE } else { CK_FALSE }]
}

pub fn decode_bool(v: &[u8]) -> Option<bool> {
    match v {
        [b] => Some(*b != CK_FALSE),
        _ => None,
    }
}

pub fn encode_ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

pub fn decode_ulong(v: &[u8]) -> Option<CK_ULONG> {
    Some(CK_ULONG::from_ne_bytes(v.try_into().ok()?))
}

/// Find an attribute in a template.
pub fn find(template: &[Attribute], ty: CK_ATTRIBUTE_TYPE) -> Option<&Attribute> {
    template.iter().find(|a| a.ty == ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values() {
        assert!(Attribute::bool(CKA_TOKEN, true).as_bool().unwrap());
        assert_eq!(
            Attribute::ulong(CKA_CLASS, CKO_DATA).as_ulong().unwrap(),
            CKO_DATA
        );
        let bad = Attribute::new(CKA_CLASS, vec![1, 2]);
        assert_eq!(
            bad.as_ulong().unwrap_err().rv(),
            CKR_ATTRIBUTE_VALUE_INVALID
        );
        assert_eq!(bad.as_bool().unwrap_err().rv(), CKR_ATTRIBUTE_VALUE_INVALID);
        let secret = Attribute::new(CKA_PRIVATE_EXPONENT, vec![0x42; 3]);
        assert_eq!(format!("{secret:?}"), "Attribute(0x123, 3 bytes)");
    }
}
