//! One `BlindingPool` per RSA key this process signs or decrypts with, so that a private-key
//! operation takes a blinding pair made while an earlier one waited for the cells instead of
//! making it on its critical path (keyfrag_core::blinding).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use keyfrag_core::rsa_combine::BlindingPool;
use keyfrag_core::rsa_public::RsaPublic;

/// Pairs kept per key: each operation takes one and makes one while the cells work, so two
/// cover the steady state of one session and some slack for several sessions on one key.
pub const PAIRS_PER_KEY: usize = 4;

/// Keys with a pool at once; past this the map is emptied (pairs are zeroized on drop).
const MAX_KEYS: usize = 256;

type Pools = Mutex<HashMap<(Vec<u8>, Vec<u8>), Arc<BlindingPool>>>;

/// The pool of `key` (created empty on first use).
pub fn for_key(key: &RsaPublic) -> Arc<BlindingPool> {
    static POOLS: OnceLock<Pools> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let id = (key.modulus(), key.public_exponent());
    if let Some(pool) = pools.get(&id) {
        return pool.clone();
    }
    if pools.len() >= MAX_KEYS {
        pools.clear();
    }
    let pool = Arc::new(BlindingPool::new(key.clone(), PAIRS_PER_KEY));
    pools.insert(id, pool.clone());
    pool
}
