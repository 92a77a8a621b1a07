//! C_GenerateKeyPair from the token's key pool (issue 4): keys the cells generated ahead of
//! time (`keyfrag pool fill`), so that the application sees an instant generation — on a
//! token with a customer fragment, instead of minutes.
//!
//! A pooled key of the asked size is claimed (the cells hand each key out once, the first
//! cell deciding between concurrent claimers) and then treated exactly as a key generated
//! now: `keygen.rs` checks it with one private operation and creates its objects, or deletes
//! it on any failure. The pool only holds keys with e = 65537, the one exponent generation
//! makes.

use keyfrag_client::ErrorKind;
use keyfrag_core::random;

use crate::error::Result;
use crate::object::generated::E_65537;
use crate::state::Slot;

/// Claims tried before giving up on the pool (each lost race or half claim costs one).
const MAX_CLAIMS: usize = 8;

/// A claimed key: (uid, n, e).
pub(super) type Pooled = (String, Vec<u8>, Vec<u8>);

/// A key of `bits` out of the pool, claimed as a token key (`lease` None) or a session key.
/// None when the pool has no such key (or every claim was lost): generate.
pub(super) fn take_pooled(slot: &Slot, bits: u32, lease: Option<u64>) -> Result<Option<Pooled>> {
    let pool = match slot.cluster.pool_list() {
        Ok(p) => p,
        // Cells without a pool route (older releases): as an empty pool.
        Err(e) if e.kind == ErrorKind::Refused => {
            tracing::debug!("no key pool on the cells: {}", e.message);
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let mut fits: Vec<_> = pool
        .into_iter()
        .filter(|k| k.bits == bits && k.public_exponent == E_65537)
        .collect();
    if fits.is_empty() {
        return Ok(None);
    }
    // Start at a random key, so that processes taking keys at the same moment rarely race
    // for the same one.
    let mut r = [0u8; 4];
    random::fill(&mut r).map_err(crate::error::CkError::from)?;
    let start = u32::from_le_bytes(r) as usize % fits.len();
    fits.rotate_left(start);
    for k in fits.into_iter().take(MAX_CLAIMS) {
        match slot.cluster.claim_pooled(&k.uid, lease) {
            Ok(true) => {
                tracing::info!(bits, key = %k.uid, "took a key from the pool");
                return Ok(Some((k.uid, k.modulus, k.public_exponent)));
            }
            Ok(false) => tracing::debug!(key = %k.uid, "pooled key taken by another process"),
            // Half claimed and deleted by the client (see keyfrag_client's pool docs).
            Err(e) => tracing::warn!(key = %k.uid, "skipping a pooled key: {}", e.message),
        }
    }
    Ok(None)
}
