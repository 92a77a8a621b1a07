//! The access keys a cell accepts, in memory: config-declared tokens (a bootstrap) plus the
//! keys the operator issued (`access_keys` in the store). Every request looks its key up here,
//! so it stays a hash map read under a read lock; an issue or revoke rebuilds it from the store
//! before the admin call returns, so a revoked key is refused from the next request on.
//!
//! The map is keyed by SHA-256 of the access key: lookup timing can depend on that hash, which
//! tells nothing about a key nobody can invert it to.
//!
//! One process per database is assumed: a second process serving the same database would only
//! see a revoke after its own restart (docs/OPERATIONS.md).

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::store::{LiveAccessKey, Store, StoreResult};

/// How often a key's `last_used` is written at most.
pub const TOUCH_INTERVAL_SECS: u64 = 60;

struct Entry {
    token: String,
    /// Issued by the operator (its last use is recorded); config keys are not.
    stored: bool,
    /// When `last_used` was last written (0: not since start).
    touched: AtomicU64,
}

#[derive(Default)]
pub struct AccessMap {
    config: Vec<(String, [u8; 32])>,
    map: RwLock<HashMap<[u8; 32], Entry>>,
}

/// What a successful lookup found.
pub struct Found {
    pub token: String,
    /// Set when this request should record the key's use (at most once a minute).
    pub touch: Option<[u8; 32]>,
}

impl AccessMap {
    pub fn new(config: Vec<(String, [u8; 32])>, store: &dyn Store) -> StoreResult<Self> {
        let map = AccessMap {
            config,
            map: RwLock::new(HashMap::new()),
        };
        map.reload(store)?;
        Ok(map)
    }

    /// Rebuild from the config and the store's live keys (keeping the touch times).
    pub fn reload(&self, store: &dyn Store) -> StoreResult<()> {
        let live = store.live_access_keys()?;
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        let mut fresh = HashMap::with_capacity(self.config.len() + live.len());
        for (token, hash) in &self.config {
            fresh.insert(
                *hash,
                Entry {
                    token: token.clone(),
                    stored: false,
                    touched: AtomicU64::new(0),
                },
            );
        }
        for LiveAccessKey { token, hash, .. } in live {
            let touched = map
                .get(&hash)
                .map(|e| e.touched.load(Ordering::Relaxed))
                .unwrap_or(0);
            fresh.insert(
                hash,
                Entry {
                    token,
                    stored: true,
                    touched: AtomicU64::new(touched),
                },
            );
        }
        *map = fresh;
        Ok(())
    }

    pub fn lookup(&self, key: &str, now: u64) -> Option<Found> {
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let entry = map.get(&hash)?;
        let last = entry.touched.load(Ordering::Relaxed);
        // Only the request that wins the swap writes, so a burst costs one write a minute.
        let touch = (entry.stored
            && now.saturating_sub(last) >= TOUCH_INTERVAL_SECS
            && entry
                .touched
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok())
        .then_some(hash);
        Some(Found {
            token: entry.token.clone(),
            touch,
        })
    }

    /// Whether `token` is declared in the config.
    pub fn in_config(&self, token: &str) -> bool {
        self.config.iter().any(|(t, _)| t == token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AccessKeyStore, SqliteStore};

    fn sha(s: &str) -> [u8; 32] {
        Sha256::digest(s.as_bytes()).into()
    }

    #[test]
    fn last_use_is_written_at_most_once_a_minute_and_a_revoke_is_seen_on_reload() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("cell.db")).unwrap();
        store.create_token("t", 0).unwrap();
        store.add_access_key("t", "k", &sha("key"), 0).unwrap();
        let map = AccessMap::new(vec![("c".into(), sha("cfg"))], &store).unwrap();
        let first = map.lookup("key", 1000).unwrap();
        assert_eq!((first.token.as_str(), first.touch), ("t", Some(sha("key"))));
        assert!(map.lookup("key", 1059).unwrap().touch.is_none());
        assert!(map.lookup("key", 1060).unwrap().touch.is_some());
        let cfg = map.lookup("cfg", 5000).unwrap();
        assert_eq!((cfg.token.as_str(), cfg.touch), ("c", None));
        assert!(map.lookup("nope", 1).is_none());
        assert!(store.revoke_access_key("t", "k", 2000).unwrap());
        assert!(map.lookup("key", 2001).is_some(), "until reloaded");
        map.reload(&store).unwrap();
        assert!(map.lookup("key", 2002).is_none());
        assert!(map.lookup("cfg", 2002).is_some());
    }
}
