//! Message digests (C_Digest*): CKM_SHA_1, CKM_SHA224/256/384/512.

use keyfrag_core::hash::Hasher;

use super::{Mechanism, Policy, entry};
use crate::error::{Result, err};
use cryptoki_sys::*;

/// A digest in progress.
pub struct DigestOp {
    pub hasher: Hasher,
    pub len: usize,
    /// C_DigestUpdate was called (C_Digest is then not allowed).
    pub updated: bool,
}

pub fn digest_init(policy: &Policy, m: &Mechanism) -> Result<DigestOp> {
    match entry(policy, m.ty)?.digest {
        Some(h) => Ok(DigestOp {
            hasher: h.hasher(),
            len: h.output_len(),
            updated: false,
        }),
        None => Err(err(CKR_MECHANISM_INVALID)),
    }
}
