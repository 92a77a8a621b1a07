//! The attribute policy table (SoftHSM's P11Attributes check flags, kryoptic's OAFlags):
//! per object class and attribute — its type, whether it is required on create, sensitive,
//! settable on create, modifiable by C_SetAttributeValue or C_CopyObject, and its default.
//! Data, not if-chains: `build`, `check_set` and `check_copy` only interpret it.

use std::collections::BTreeMap;

use cryptoki_sys::*;

use super::attr::{Attribute, decode_ulong, encode_bool, encode_ulong};
use super::vendor::CKA_KEYFRAG_CUSTOMER;
use super::vendor::CKA_KEYFRAG_EPOCH;
use crate::error::{Result, err};

/// How an attribute's value is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Ulong,
    Bytes,
    /// An array of CK_MECHANISM_TYPE (CKA_ALLOWED_MECHANISMS).
    MechList,
}

/// Must be present in a C_CreateObject template.
pub const REQUIRED: u16 = 1;
/// Never revealed (CKR_ATTRIBUTE_SENSITIVE) and never stored: the private parts.
pub const SENSITIVE: u16 = 2;
/// May be given in a C_CreateObject template; otherwise the attribute is read-only.
pub const SETTABLE: u16 = 4;
/// C_SetAttributeValue may change it.
pub const MODIFIABLE: u16 = 8;
/// A C_CopyObject template may change it.
pub const COPY: u16 = 16;
/// Changes may only go from CK_TRUE to CK_FALSE (CKA_EXTRACTABLE, CKA_MODIFIABLE, …).
pub const ONLY_TO_FALSE: u16 = 32;
/// Changes may only go from CK_FALSE to CK_TRUE (CKA_SENSITIVE).
pub const ONLY_TO_TRUE: u16 = 64;

/// Class masks.
pub const DATA: u8 = 1;
pub const CERT: u8 = 2;
pub const PUB: u8 = 4;
pub const PRIV: u8 = 8;
/// Secret keys (PRF-backed AES and HMAC keys, issue 9).
pub const SEC: u8 = 16;
pub const KEYS: u8 = PUB | PRIV;
pub const ALL: u8 = DATA | CERT | PUB | PRIV | SEC;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultValue {
    /// No default: required, sensitive, or computed by the object code.
    None,
    Bool(bool),
    Ulong(CK_ULONG),
    Empty,
    /// The mechanisms an RSA key may be used with (PKCS, PSS and OAEP, COMPAT item 6).
    AllowedMechanisms,
}

#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub ty: CK_ATTRIBUTE_TYPE,
    pub kind: Kind,
    pub classes: u8,
    pub flags: u16,
    pub default: DefaultValue,
}

const fn r(
    ty: CK_ATTRIBUTE_TYPE,
    kind: Kind,
    classes: u8,
    flags: u16,
    default: DefaultValue,
) -> Rule {
    Rule {
        ty,
        kind,
        classes,
        flags,
        default,
    }
}

use DefaultValue as D;
use Kind::*;

const EDIT: u16 = SETTABLE | MODIFIABLE | COPY;

/// The table. The first rule whose class mask matches wins.
pub static RULES: &[Rule] = &[
    // Common to all objects.
    r(CKA_CLASS, Ulong, ALL, REQUIRED | SETTABLE, D::None),
    r(CKA_TOKEN, Bool, ALL, SETTABLE | COPY, D::Bool(false)),
    r(
        CKA_PRIVATE,
        Bool,
        PRIV | SEC,
        SETTABLE | COPY,
        D::Bool(true),
    ),
    r(
        CKA_PRIVATE,
        Bool,
        DATA | CERT | PUB,
        SETTABLE | COPY,
        D::Bool(false),
    ),
    r(
        CKA_MODIFIABLE,
        Bool,
        ALL,
        SETTABLE | COPY | ONLY_TO_FALSE,
        D::Bool(true),
    ),
    r(
        CKA_COPYABLE,
        Bool,
        ALL,
        SETTABLE | COPY | ONLY_TO_FALSE,
        D::Bool(true),
    ),
    r(
        CKA_DESTROYABLE,
        Bool,
        ALL,
        SETTABLE | COPY | ONLY_TO_FALSE,
        D::Bool(true),
    ),
    r(CKA_LABEL, Bytes, ALL, EDIT, D::Empty),
    r(CKA_UNIQUE_ID, Bytes, ALL, 0, D::None),
    // Secret keys: the key material is a PRF key on the cells, so CKA_VALUE is never stored
    // nor revealed, and the key is sensitive and unextractable for good.
    r(CKA_ID, Bytes, SEC, EDIT, D::Empty),
    r(CKA_START_DATE, Bytes, SEC, EDIT, D::Empty),
    r(CKA_END_DATE, Bytes, SEC, EDIT, D::Empty),
    r(CKA_KEY_TYPE, Ulong, SEC, REQUIRED | SETTABLE, D::None),
    r(CKA_DERIVE, Bool, SEC, EDIT, D::Bool(false)),
    r(CKA_LOCAL, Bool, SEC, 0, D::Bool(false)),
    r(
        CKA_KEY_GEN_MECHANISM,
        Ulong,
        SEC,
        0,
        D::Ulong(CK_UNAVAILABLE_INFORMATION),
    ),
    r(CKA_ALLOWED_MECHANISMS, MechList, SEC, SETTABLE, D::Empty),
    r(CKA_ENCRYPT, Bool, SEC, EDIT, D::Bool(true)),
    r(CKA_DECRYPT, Bool, SEC, EDIT, D::Bool(true)),
    r(CKA_SIGN, Bool, SEC, EDIT, D::Bool(true)),
    r(CKA_VERIFY, Bool, SEC, EDIT, D::Bool(true)),
    r(CKA_WRAP, Bool, SEC, EDIT, D::Bool(true)),
    r(CKA_UNWRAP, Bool, SEC, EDIT, D::Bool(true)),
    r(CKA_TRUSTED, Bool, SEC, SETTABLE, D::Bool(false)),
    r(
        CKA_WRAP_WITH_TRUSTED,
        Bool,
        SEC,
        SETTABLE | COPY | ONLY_TO_TRUE,
        D::Bool(false),
    ),
    r(CKA_SENSITIVE, Bool, SEC, EDIT | ONLY_TO_TRUE, D::Bool(true)),
    r(
        CKA_EXTRACTABLE,
        Bool,
        SEC,
        EDIT | ONLY_TO_FALSE,
        D::Bool(false),
    ),
    r(CKA_ALWAYS_SENSITIVE, Bool, SEC, 0, D::Bool(false)),
    r(CKA_NEVER_EXTRACTABLE, Bool, SEC, 0, D::Bool(false)),
    r(CKA_VALUE, Bytes, SEC, SETTABLE | SENSITIVE, D::None),
    r(CKA_VALUE_LEN, Ulong, SEC, SETTABLE, D::None),
    r(CKA_CHECK_VALUE, Bytes, SEC, 0, D::None),
    // Data objects.
    r(CKA_APPLICATION, Bytes, DATA, EDIT, D::Empty),
    r(CKA_OBJECT_ID, Bytes, DATA, EDIT, D::Empty),
    r(CKA_VALUE, Bytes, DATA, EDIT, D::Empty),
    // Certificates (X.509 public key certificates).
    r(
        CKA_CERTIFICATE_TYPE,
        Ulong,
        CERT,
        REQUIRED | SETTABLE,
        D::None,
    ),
    r(CKA_TRUSTED, Bool, CERT | PUB, SETTABLE, D::Bool(false)),
    r(CKA_CERTIFICATE_CATEGORY, Ulong, CERT, EDIT, D::Ulong(0)),
    r(CKA_CHECK_VALUE, Bytes, CERT, SETTABLE, D::Empty),
    r(CKA_VALUE, Bytes, CERT, REQUIRED | SETTABLE, D::None),
    r(CKA_ISSUER, Bytes, CERT, EDIT, D::Empty),
    r(CKA_SERIAL_NUMBER, Bytes, CERT, EDIT, D::Empty),
    r(CKA_URL, Bytes, CERT, SETTABLE, D::Empty),
    r(
        CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
        Bytes,
        CERT,
        SETTABLE,
        D::Empty,
    ),
    r(
        CKA_HASH_OF_ISSUER_PUBLIC_KEY,
        Bytes,
        CERT,
        SETTABLE,
        D::Empty,
    ),
    r(
        CKA_JAVA_MIDP_SECURITY_DOMAIN,
        Ulong,
        CERT,
        SETTABLE,
        D::Ulong(0),
    ),
    r(
        CKA_NAME_HASH_ALGORITHM,
        Ulong,
        CERT,
        SETTABLE,
        D::Ulong(CKM_SHA_1),
    ),
    r(CKA_PUBLIC_KEY_INFO, Bytes, CERT, SETTABLE, D::Empty),
    // Certificates and keys.
    r(CKA_ID, Bytes, CERT | KEYS, EDIT, D::Empty),
    r(CKA_SUBJECT, Bytes, CERT | KEYS, EDIT, D::Empty),
    r(CKA_START_DATE, Bytes, CERT | KEYS, EDIT, D::Empty),
    r(CKA_END_DATE, Bytes, CERT | KEYS, EDIT, D::Empty),
    // Keys.
    r(CKA_KEY_TYPE, Ulong, KEYS, REQUIRED | SETTABLE, D::None),
    r(CKA_DERIVE, Bool, KEYS, EDIT, D::Bool(false)),
    r(CKA_LOCAL, Bool, KEYS, 0, D::Bool(false)),
    r(CKA_KEYFRAG_CUSTOMER, Bytes, PRIV | SEC, 0, D::Empty),
    r(
        CKA_KEY_GEN_MECHANISM,
        Ulong,
        KEYS,
        0,
        D::Ulong(CK_UNAVAILABLE_INFORMATION),
    ),
    r(
        CKA_ALLOWED_MECHANISMS,
        MechList,
        KEYS,
        SETTABLE,
        D::AllowedMechanisms,
    ),
    r(CKA_MODULUS, Bytes, KEYS, REQUIRED | SETTABLE, D::None),
    r(
        CKA_PUBLIC_EXPONENT,
        Bytes,
        KEYS,
        REQUIRED | SETTABLE,
        D::None,
    ),
    // Computed from the modulus and exponent (a template value is replaced).
    r(CKA_PUBLIC_KEY_INFO, Bytes, KEYS, SETTABLE, D::None),
    // Public keys.
    r(CKA_ENCRYPT, Bool, PUB, EDIT, D::Bool(true)),
    r(CKA_VERIFY, Bool, PUB, EDIT, D::Bool(true)),
    r(CKA_VERIFY_RECOVER, Bool, PUB, EDIT, D::Bool(false)),
    r(CKA_WRAP, Bool, PUB, EDIT, D::Bool(false)),
    r(CKA_MODULUS_BITS, Ulong, PUB, SETTABLE, D::None),
    // Private keys.
    r(
        CKA_SENSITIVE,
        Bool,
        PRIV,
        EDIT | ONLY_TO_TRUE,
        D::Bool(true),
    ),
    r(CKA_DECRYPT, Bool, PRIV, EDIT, D::Bool(true)),
    r(CKA_SIGN, Bool, PRIV, EDIT, D::Bool(true)),
    r(CKA_SIGN_RECOVER, Bool, PRIV, EDIT, D::Bool(false)),
    r(CKA_UNWRAP, Bool, PRIV, EDIT, D::Bool(false)),
    r(
        CKA_EXTRACTABLE,
        Bool,
        PRIV,
        EDIT | ONLY_TO_FALSE,
        D::Bool(false),
    ),
    r(CKA_ALWAYS_SENSITIVE, Bool, PRIV, 0, D::Bool(false)),
    r(CKA_NEVER_EXTRACTABLE, Bool, PRIV, 0, D::Bool(false)),
    // Read-only, never stored in the object: answered from the cells (fns/object.rs).
    r(CKA_KEYFRAG_EPOCH, Ulong, PRIV, 0, D::None),
    r(
        CKA_WRAP_WITH_TRUSTED,
        Bool,
        PRIV,
        SETTABLE | COPY | ONLY_TO_TRUE,
        D::Bool(false),
    ),
    r(
        CKA_ALWAYS_AUTHENTICATE,
        Bool,
        PRIV,
        SETTABLE,
        D::Bool(false),
    ),
    r(
        CKA_PRIVATE_EXPONENT,
        Bytes,
        PRIV,
        REQUIRED | SETTABLE | SENSITIVE,
        D::None,
    ),
    r(CKA_PRIME_1, Bytes, PRIV, SETTABLE | SENSITIVE, D::None),
    r(CKA_PRIME_2, Bytes, PRIV, SETTABLE | SENSITIVE, D::None),
    r(CKA_EXPONENT_1, Bytes, PRIV, SETTABLE | SENSITIVE, D::None),
    r(CKA_EXPONENT_2, Bytes, PRIV, SETTABLE | SENSITIVE, D::None),
    r(CKA_COEFFICIENT, Bytes, PRIV, SETTABLE | SENSITIVE, D::None),
];

/// The mechanisms listed in CKA_ALLOWED_MECHANISMS by default.
pub const DEFAULT_ALLOWED_MECHANISMS: &[CK_MECHANISM_TYPE] = &[
    CKM_RSA_PKCS,
    CKM_SHA1_RSA_PKCS,
    CKM_SHA224_RSA_PKCS,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA512_RSA_PKCS,
    CKM_RSA_PKCS_PSS,
    CKM_SHA1_RSA_PKCS_PSS,
    CKM_SHA224_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
    CKM_RSA_PKCS_OAEP,
    CKM_RSA_X_509,
];

/// The mask bit of an object class we support.
pub fn class_mask(class: CK_OBJECT_CLASS) -> Option<u8> {
    match class {
        CKO_DATA => Some(DATA),
        CKO_CERTIFICATE => Some(CERT),
        CKO_PUBLIC_KEY => Some(PUB),
        CKO_PRIVATE_KEY => Some(PRIV),
        CKO_SECRET_KEY => Some(SEC),
        _ => None,
    }
}

/// The rule for an attribute of an object of `class`, if the attribute applies to it.
pub fn rule(class: CK_OBJECT_CLASS, ty: CK_ATTRIBUTE_TYPE) -> Option<&'static Rule> {
    let mask = class_mask(class)?;
    RULES.iter().find(|r| r.ty == ty && r.classes & mask != 0)
}

fn encode_mechs(m: &[CK_MECHANISM_TYPE]) -> Vec<u8> {
    m.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

fn default_value(d: DefaultValue) -> Option<Vec<u8>> {
    match d {
        D::None => None,
        D::Bool(b) => Some(encode_bool(b)),
        D::Ulong(v) => Some(encode_ulong(v)),
        D::Empty => Some(Vec::new()),
        D::AllowedMechanisms => Some(encode_mechs(DEFAULT_ALLOWED_MECHANISMS)),
    }
}

/// Check a value's encoding against its kind.
pub fn check_kind(rule: &Rule, v: &[u8]) -> Result<()> {
    let ok = match rule.kind {
        Bool => v.len() == 1,
        Ulong => v.len() == size_of::<CK_ULONG>(),
        Bytes => true,
        MechList => v.len().is_multiple_of(size_of::<CK_ULONG>()),
    };
    if ok {
        Ok(())
    } else {
        tracing::debug!(attribute = rule.ty, "attribute value has the wrong size");
        Err(err(CKR_ATTRIBUTE_VALUE_INVALID))
    }
}

/// The attribute map of a new object of `class` from a create template: template values
/// checked against the table, then defaults. Sensitive attributes are left out (the caller
/// takes them from the template and zeroizes them); attributes of other classes are
/// ignored (generic tools send them, COMPAT item 13); unknown vendor attributes are
/// CKR_ATTRIBUTE_TYPE_INVALID; a missing required attribute is CKR_TEMPLATE_INCOMPLETE.
pub fn build(
    class: CK_OBJECT_CLASS,
    template: &[Attribute],
) -> Result<BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>> {
    build_with(class, template, true)
}

/// As `build`, for an object made by key generation: required attributes are not looked
/// for, since the generator supplies them (class, key type, modulus, exponents). The caller
/// has already refused or consumed the attributes a generation template may not set.
pub fn build_generated(
    class: CK_OBJECT_CLASS,
    template: &[Attribute],
) -> Result<BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>> {
    build_with(class, template, false)
}

fn build_with(
    class: CK_OBJECT_CLASS,
    template: &[Attribute],
    check_required: bool,
) -> Result<BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>> {
    let mask = class_mask(class).ok_or_else(|| {
        tracing::debug!(class, "unsupported object class");
        err(CKR_ATTRIBUTE_VALUE_INVALID)
    })?;
    let mut map = BTreeMap::new();
    for a in template {
        let Some(rule) = rule(class, a.ty) else {
            if a.ty >= CKA_VENDOR_DEFINED {
                tracing::warn!(
                    attribute = a.ty,
                    class,
                    "unknown vendor attribute in template"
                );
                return Err(err(CKR_ATTRIBUTE_TYPE_INVALID));
            }
            tracing::debug!(
                attribute = a.ty,
                class,
                "ignoring attribute not applicable to the class"
            );
            continue;
        };
        check_kind(rule, &a.value)?;
        if rule.flags & SENSITIVE != 0 {
            continue;
        }
        if rule.flags & SETTABLE == 0 {
            if default_value(rule.default).as_deref() == Some(&a.value[..]) {
                continue;
            }
            tracing::debug!(attribute = a.ty, "read-only attribute in template");
            return Err(err(CKR_ATTRIBUTE_READ_ONLY));
        }
        map.insert(a.ty, a.value.to_vec());
    }
    for rule in RULES.iter().filter(|r| r.classes & mask != 0) {
        if map.contains_key(&rule.ty) {
            continue;
        }
        if check_required && rule.flags & REQUIRED != 0 && !template.iter().any(|a| a.ty == rule.ty)
        {
            tracing::warn!(
                attribute = rule.ty,
                class,
                "template lacks a required attribute"
            );
            return Err(err(CKR_TEMPLATE_INCOMPLETE));
        }
        if let Some(v) = default_value(rule.default) {
            map.insert(rule.ty, v);
        }
    }
    Ok(map)
}

fn check_direction(rule: &Rule, current: Option<&[u8]>, new: &[u8]) -> Result<()> {
    let cur = current.and_then(super::attr::decode_bool);
    let new = super::attr::decode_bool(new);
    let bad = match (cur, new) {
        (Some(c), Some(n)) if c != n => {
            (rule.flags & ONLY_TO_FALSE != 0 && n) || (rule.flags & ONLY_TO_TRUE != 0 && !n)
        }
        _ => false,
    };
    if bad {
        tracing::debug!(
            attribute = rule.ty,
            "attribute may not change in that direction"
        );
        return Err(err(CKR_ATTRIBUTE_READ_ONLY));
    }
    Ok(())
}

/// Check one C_SetAttributeValue change against the table.
pub fn check_set(class: CK_OBJECT_CLASS, a: &Attribute, current: Option<&[u8]>) -> Result<()> {
    let rule = rule(class, a.ty).ok_or_else(|| {
        tracing::debug!(attribute = a.ty, "not an attribute of this object");
        err(CKR_ATTRIBUTE_TYPE_INVALID)
    })?;
    check_kind(rule, &a.value)?;
    if rule.flags & MODIFIABLE == 0 {
        tracing::debug!(attribute = a.ty, "attribute is not modifiable");
        return Err(err(CKR_ATTRIBUTE_READ_ONLY));
    }
    check_direction(rule, current, &a.value)
}

/// Check one C_CopyObject template entry against the table.
pub fn check_copy(class: CK_OBJECT_CLASS, a: &Attribute, current: Option<&[u8]>) -> Result<()> {
    let rule = rule(class, a.ty).ok_or_else(|| {
        tracing::debug!(attribute = a.ty, "not an attribute of this object");
        err(CKR_ATTRIBUTE_TYPE_INVALID)
    })?;
    check_kind(rule, &a.value)?;
    if rule.flags & (COPY | MODIFIABLE) == 0 {
        tracing::debug!(attribute = a.ty, "attribute cannot change in a copy");
        return Err(err(CKR_ATTRIBUTE_READ_ONLY));
    }
    check_direction(rule, current, &a.value)
}

/// Whether an attribute of `class` is never revealed.
pub fn is_sensitive(class: CK_OBJECT_CLASS, ty: CK_ATTRIBUTE_TYPE) -> bool {
    rule(class, ty).is_some_and(|r| r.flags & SENSITIVE != 0)
}

#[allow(clippy::unnecessary_cast)] // CK_ULONG is 32 bits on some platforms
/// Native → stored encoding: CK_ULONG values as 8 bytes little-endian, so records read the
/// same on every platform.
pub fn to_stored(class: CK_OBJECT_CLASS, ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Vec<u8> {
    match rule(class, ty).map(|r| r.kind) {
        Some(Ulong) | Some(MechList) => v
            .chunks(size_of::<CK_ULONG>())
            .filter_map(decode_ulong)
            .flat_map(|x| (x as u64).to_le_bytes())
            .collect(),
        _ => v.to_vec(),
    }
}

/// Stored → native encoding; None if the stored value is malformed.
pub fn from_stored(class: CK_OBJECT_CLASS, ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Option<Vec<u8>> {
    match rule(class, ty).map(|r| r.kind) {
        Some(Ulong) | Some(MechList) => {
            if !v.len().is_multiple_of(8) {
                return None;
            }
            let mut out = Vec::new();
            for c in v.chunks(8) {
                let x = u64::from_le_bytes(c.try_into().ok()?);
                let x = if x == u64::MAX {
                    CK_UNAVAILABLE_INFORMATION
                } else {
                    CK_ULONG::try_from(x).ok()?
                };
                out.extend_from_slice(&x.to_ne_bytes());
            }
            Some(out)
        }
        _ => Some(v.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tpl(class: CK_OBJECT_CLASS) -> Vec<Attribute> {
        vec![Attribute::ulong(CKA_CLASS, class)]
    }

    #[test]
    fn private_key_defaults() {
        let mut t = tpl(CKO_PRIVATE_KEY);
        t.push(Attribute::ulong(CKA_KEY_TYPE, CKK_RSA));
        t.push(Attribute::new(CKA_MODULUS, vec![0xc1; 256]));
        t.push(Attribute::new(CKA_PUBLIC_EXPONENT, vec![1, 0, 1]));
        t.push(Attribute::new(CKA_PRIVATE_EXPONENT, vec![7; 256]));
        t.push(Attribute::new(CKA_PRIME_1, vec![7; 128]));
        let m = build(CKO_PRIVATE_KEY, &t).unwrap();
        assert!(!m.contains_key(&CKA_PRIVATE_EXPONENT));
        assert!(!m.contains_key(&CKA_PRIME_1));
        assert_eq!(m[&CKA_TOKEN], encode_bool(false));
        assert_eq!(m[&CKA_PRIVATE], encode_bool(true));
        assert_eq!(m[&CKA_SENSITIVE], encode_bool(true));
        assert_eq!(m[&CKA_EXTRACTABLE], encode_bool(false));
        assert_eq!(m[&CKA_ALWAYS_SENSITIVE], encode_bool(false));
        assert_eq!(m[&CKA_NEVER_EXTRACTABLE], encode_bool(false));
        assert_eq!(m[&CKA_LOCAL], encode_bool(false));
        assert_eq!(m[&CKA_ALWAYS_AUTHENTICATE], encode_bool(false));
        let mechs = &m[&CKA_ALLOWED_MECHANISMS];
        let list: Vec<CK_ULONG> = mechs
            .chunks(size_of::<CK_ULONG>())
            .filter_map(decode_ulong)
            .collect();
        assert!(
            list.contains(&CKM_RSA_PKCS)
                && list.contains(&CKM_RSA_PKCS_PSS)
                && list.contains(&CKM_RSA_PKCS_OAEP)
        );
        assert!(is_sensitive(CKO_PRIVATE_KEY, CKA_PRIVATE_EXPONENT));
        assert!(is_sensitive(CKO_PRIVATE_KEY, CKA_COEFFICIENT));
        assert!(!is_sensitive(CKO_PRIVATE_KEY, CKA_MODULUS));
    }

    #[test]
    fn public_objects_default_public() {
        for class in [CKO_PUBLIC_KEY, CKO_CERTIFICATE, CKO_DATA] {
            let mut t = tpl(class);
            match class {
                CKO_PUBLIC_KEY => {
                    t.push(Attribute::ulong(CKA_KEY_TYPE, CKK_RSA));
                    t.push(Attribute::new(CKA_MODULUS, vec![0xc1; 256]));
                    t.push(Attribute::new(CKA_PUBLIC_EXPONENT, vec![1, 0, 1]));
                }
                CKO_CERTIFICATE => {
                    t.push(Attribute::ulong(CKA_CERTIFICATE_TYPE, CKC_X_509));
                    t.push(Attribute::new(CKA_VALUE, vec![0x30, 0]));
                }
                _ => {}
            }
            let m = build(class, &t).unwrap();
            assert_eq!(m[&CKA_PRIVATE], encode_bool(false), "class {class}");
        }
    }

    #[test]
    fn required_readonly_unknown() {
        let t = tpl(CKO_CERTIFICATE);
        assert_eq!(
            build(CKO_CERTIFICATE, &t).unwrap_err().rv(),
            CKR_TEMPLATE_INCOMPLETE
        );
        let mut t = tpl(CKO_DATA);
        t.push(Attribute::bool(CKA_SIGN, true)); // a key attribute: ignored on a data object
        assert!(build(CKO_DATA, &t).is_ok());
        t.push(Attribute::new(CKA_VENDOR_DEFINED | 0x55, vec![1]));
        assert_eq!(
            build(CKO_DATA, &t).unwrap_err().rv(),
            CKR_ATTRIBUTE_TYPE_INVALID
        );
        let mut t = tpl(CKO_PRIVATE_KEY);
        t.push(Attribute::ulong(CKA_KEYFRAG_EPOCH, 1));
        assert_eq!(
            build_generated(CKO_PRIVATE_KEY, &t).unwrap_err().rv(),
            CKR_ATTRIBUTE_READ_ONLY
        );
        assert_eq!(
            check_set(CKO_PRIVATE_KEY, &t[1], None).unwrap_err().rv(),
            CKR_ATTRIBUTE_READ_ONLY
        );
        let mut t = tpl(CKO_DATA);
        t.push(Attribute::new(CKA_UNIQUE_ID, b"x".to_vec()));
        assert_eq!(
            build(CKO_DATA, &t).unwrap_err().rv(),
            CKR_ATTRIBUTE_READ_ONLY
        );
        let mut t = tpl(CKO_DATA);
        t.push(Attribute::new(CKA_TOKEN, vec![1, 1]));
        assert_eq!(
            build(CKO_DATA, &t).unwrap_err().rv(),
            CKR_ATTRIBUTE_VALUE_INVALID
        );
        assert_eq!(
            build(CKO_DOMAIN_PARAMETERS, &tpl(CKO_DOMAIN_PARAMETERS))
                .unwrap_err()
                .rv(),
            CKR_ATTRIBUTE_VALUE_INVALID
        );
    }

    #[test]
    fn set_rules() {
        let t = encode_bool(true);
        let f = encode_bool(false);
        // CKA_SENSITIVE: false → true only.
        assert!(
            check_set(
                CKO_PRIVATE_KEY,
                &Attribute::bool(CKA_SENSITIVE, true),
                Some(&f)
            )
            .is_ok()
        );
        assert_eq!(
            check_set(
                CKO_PRIVATE_KEY,
                &Attribute::bool(CKA_SENSITIVE, false),
                Some(&t)
            )
            .unwrap_err()
            .rv(),
            CKR_ATTRIBUTE_READ_ONLY
        );
        // CKA_EXTRACTABLE: true → false only.
        assert!(
            check_set(
                CKO_PRIVATE_KEY,
                &Attribute::bool(CKA_EXTRACTABLE, false),
                Some(&t)
            )
            .is_ok()
        );
        assert_eq!(
            check_set(
                CKO_PRIVATE_KEY,
                &Attribute::bool(CKA_EXTRACTABLE, true),
                Some(&f)
            )
            .unwrap_err()
            .rv(),
            CKR_ATTRIBUTE_READ_ONLY
        );
        assert_eq!(
            check_set(CKO_PRIVATE_KEY, &Attribute::new(CKA_MODULUS, vec![1]), None)
                .unwrap_err()
                .rv(),
            CKR_ATTRIBUTE_READ_ONLY
        );
        assert_eq!(
            check_set(CKO_PRIVATE_KEY, &Attribute::new(CKA_VALUE, vec![1]), None)
                .unwrap_err()
                .rv(),
            CKR_ATTRIBUTE_TYPE_INVALID
        );
        assert!(
            check_set(
                CKO_PRIVATE_KEY,
                &Attribute::new(CKA_LABEL, b"x".to_vec()),
                None
            )
            .is_ok()
        );
        // CKA_TOKEN changes only through a copy.
        assert_eq!(
            check_set(CKO_PRIVATE_KEY, &Attribute::bool(CKA_TOKEN, true), Some(&f))
                .unwrap_err()
                .rv(),
            CKR_ATTRIBUTE_READ_ONLY
        );
        assert!(check_copy(CKO_PRIVATE_KEY, &Attribute::bool(CKA_TOKEN, true), Some(&f)).is_ok());
    }

    #[test]
    fn stored_encoding_roundtrip() {
        let v = encode_ulong(CKO_PRIVATE_KEY);
        let s = to_stored(CKO_PRIVATE_KEY, CKA_CLASS, &v);
        assert_eq!(s, 3u64.to_le_bytes());
        assert_eq!(from_stored(CKO_PRIVATE_KEY, CKA_CLASS, &s).unwrap(), v);
        let u = encode_ulong(CK_UNAVAILABLE_INFORMATION);
        let s = to_stored(CKO_PRIVATE_KEY, CKA_KEY_GEN_MECHANISM, &u);
        assert_eq!(
            from_stored(CKO_PRIVATE_KEY, CKA_KEY_GEN_MECHANISM, &s).unwrap(),
            u
        );
        assert_eq!(from_stored(CKO_PRIVATE_KEY, CKA_CLASS, &[1, 2, 3]), None);
        assert_eq!(to_stored(CKO_DATA, CKA_LABEL, b"abc"), b"abc");
    }
}
