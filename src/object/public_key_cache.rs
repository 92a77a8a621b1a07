//! Parsed RSA public keys, kept across operations.
//!
//! Parsing a public key precomputes its Montgomery parameters (R² mod N, a full-width
//! division), which cost more than the public-key operation itself; verify and encrypt would
//! otherwise pay it on every call. Keys are public, so sharing them process-wide is harmless.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use keyfrag_core::rsa_public::RsaPublic;

/// Enough for every key an application uses at once; the cache is simply emptied when full.
const CAPACITY: usize = 1024;

/// (modulus, public exponent) as stored in the object → the parsed key.
type Cache = Mutex<HashMap<(Vec<u8>, Vec<u8>), RsaPublic>>;

pub fn get_or_parse(modulus: &[u8], exponent: &[u8]) -> keyfrag_core::Result<RsaPublic> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (modulus.to_vec(), exponent.to_vec());
    if let Some(found) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(found.clone());
    }
    let parsed = RsaPublic::new(modulus, exponent)?;
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= CAPACITY {
        map.clear();
    }
    map.insert(key, parsed.clone());
    Ok(parsed)
}
