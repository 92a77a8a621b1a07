//! keyfrag's vendor-defined attributes, as declared in include/keyfrag.h.

use cryptoki_sys::*;

/// CKA_VENDOR_DEFINED | "KF" << 16: the base of keyfrag's attribute numbers.
pub const CKA_KEYFRAG_BASE: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 0x4B46_0000;

/// CK_ULONG, read-only, private keys: the epoch of the key's fragments on the cells — 1 when
/// generated or imported, one more after each refresh. Read from the cells on every
/// C_GetAttributeValue (the newest epoch every cell serves); not matched by C_FindObjects.
pub const CKA_KEYFRAG_EPOCH: CK_ATTRIBUTE_TYPE = CKA_KEYFRAG_BASE + 1;

/// Bytes, read-only, private and secret keys: SHA-256 of the customer fragment's identity key
/// when the key needs the customer's share (empty for a key the cells hold alone).
pub const CKA_KEYFRAG_CUSTOMER: CK_ATTRIBUTE_TYPE = CKA_KEYFRAG_BASE + 2;
