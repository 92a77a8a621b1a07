//! Vendor-defined values, as declared in include/keyfrag.h.

use cryptoki_sys::{CK_ATTRIBUTE_TYPE, CKA_VENDOR_DEFINED};

/// CKA_VENDOR_DEFINED | "KF".
pub const CKA_KEYFRAG_BASE: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 0x4B46_0000;

/// Private keys: SHA-256 of the customer fragment's identity key when the key needs the
/// customer's share (empty for a key held by the cells alone). Read-only.
pub const CKA_KEYFRAG_CUSTOMER: CK_ATTRIBUTE_TYPE = CKA_KEYFRAG_BASE + 2;
