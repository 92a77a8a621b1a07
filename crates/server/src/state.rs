//! What every request handler shares: the store, the master key, the access-key table.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::access_map::AccessMap;
use crate::config::{CellConfig, CellToken, parse_sha256_hex};
use crate::error::{ApiError, ApiResult, ServerError};
use crate::keygen::Sessions;
use crate::maintenance::Maintenance;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimit;
use crate::refresh::Deals;
use crate::relay_identity::RelayIdentity;
use crate::sealing::MasterKey;
use crate::store::{SqliteStore, Store, StoreResult};

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    name: String,
    store: Arc<dyn Store>,
    master_key: MasterKey,
    /// Every accepted access key: config-declared and operator-issued.
    access: Arc<AccessMap>,
    argon2_m_kib: u32,
    /// None: the cell has no relay identity and refuses key generation.
    relay: Option<Arc<RelayIdentity>>,
    /// Key generations in progress (memory only: a restart aborts them all).
    keygen: Arc<Sessions>,
    /// Refresh deals waiting for PREPARE (memory only, like key generations).
    refresh: Arc<Deals>,
    /// Requests per token.
    rate_limit: Arc<RateLimit>,
    /// SHA-256 of the operator key; None: the admin routes refuse everyone.
    operator_key: Option<[u8; 32]>,
    /// Request counters for the metrics listener.
    metrics: Arc<Metrics>,
    /// Backup pause and restore in progress.
    maintenance: Arc<Maintenance>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(
        name: String,
        store: Arc<dyn Store>,
        master_key: MasterKey,
        tokens: &[CellToken],
        argon2_m_kib: u32,
    ) -> Result<Self, ServerError> {
        let metrics = Arc::new(Metrics::new(tokens.iter().map(|t| t.id.clone()).collect()));
        let tokens = tokens
            .iter()
            .map(|t| {
                parse_sha256_hex(&t.access_key_sha256)
                    .map(|h| (t.id.clone(), h))
                    .ok_or_else(|| {
                        ServerError::Store(format!("token {:?}: bad access_key_sha256", t.id))
                    })
            })
            .collect::<Result<_, _>>()?;
        let access = AccessMap::new(tokens, store.as_ref())
            .map_err(|e| ServerError::Store(format!("cannot read access keys: {e}")))?;
        Ok(AppState {
            inner: Arc::new(Inner {
                name,
                store,
                master_key,
                access: Arc::new(access),
                argon2_m_kib,
                relay: None,
                keygen: Arc::new(Sessions::default()),
                refresh: Arc::new(Deals::default()),
                rate_limit: Arc::new(RateLimit::new(0, 0)),
                operator_key: None,
                metrics,
                maintenance: Arc::new(Maintenance::default()),
            }),
        })
    }

    /// The same state with a per-token request rate limit (`per_sec` 0: none).
    pub fn with_rate_limit(self, per_sec: u32, burst: u32) -> Self {
        let mut inner = (*self.inner).clone();
        inner.rate_limit = Arc::new(RateLimit::new(per_sec, burst));
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// The same state with an operator key (its SHA-256), which opens the admin routes.
    pub fn with_operator_key(self, sha256: [u8; 32]) -> Self {
        let mut inner = (*self.inner).clone();
        inner.operator_key = Some(sha256);
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// Whether `key` is the operator key (compared as hashes, in constant time).
    pub fn is_operator_key(&self, key: &str) -> bool {
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.inner
            .operator_key
            .is_some_and(|expected| bool::from(hash.ct_eq(&expected)))
    }

    /// Whether one more request for `token` is within its rate.
    pub fn admit(&self, token: &str) -> bool {
        self.inner.rate_limit.admit(token)
    }

    /// The same state with a relay identity (so the cell can take part in key generation).
    pub fn with_relay(self, relay: RelayIdentity) -> Self {
        let mut inner = (*self.inner).clone();
        inner.relay = Some(Arc::new(relay));
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// Open the configured database and master key (everything but the network).
    pub fn open(config: &CellConfig) -> Result<Self, ServerError> {
        let master_key = MasterKey::load(&config.master_key_file)?;
        let store = SqliteStore::open(&config.database).map_err(|e| {
            ServerError::file(&config.database, format!("cannot open database: {e}"))
        })?;
        let state = Self::new(
            config.name.clone(),
            Arc::new(store),
            master_key,
            &config.tokens,
            config.argon2_m_kib,
        )?
        .with_rate_limit(config.rate_limit_per_sec, config.rate_limit_burst);
        let state = match &config.operator_key_sha256 {
            Some(h) => state.with_operator_key(parse_sha256_hex(h).ok_or_else(|| {
                ServerError::Store("operator_key_sha256 must be 64 hex digits".into())
            })?),
            None => state,
        };
        match (&config.relay_seed_file, &config.cluster_file) {
            (Some(seed), Some(cluster)) => {
                Ok(state.with_relay(RelayIdentity::load(&config.name, seed, cluster)?))
            }
            _ => Ok(state),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn master_key(&self) -> &MasterKey {
        &self.inner.master_key
    }

    pub fn argon2_m_kib(&self) -> u32 {
        self.inner.argon2_m_kib
    }

    pub fn relay(&self) -> Option<&Arc<RelayIdentity>> {
        self.inner.relay.as_ref()
    }

    pub fn keygen_sessions(&self) -> &Arc<Sessions> {
        &self.inner.keygen
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub fn maintenance(&self) -> &Arc<Maintenance> {
        &self.inner.maintenance
    }

    /// A restore is swapping the database: not ready.
    pub fn restoring(&self) -> bool {
        self.inner.maintenance.restoring()
    }

    pub fn refresh_deals(&self) -> &Arc<Deals> {
        &self.inner.refresh
    }

    /// The token `key` selects (config-declared or issued and not revoked). An issued key's
    /// last use is written at most once a minute (one request a minute pays for the write).
    pub async fn token_for_access_key(&self, key: &str) -> Option<String> {
        let found = self.inner.access.lookup(key, crate::routes::now_secs())?;
        if let Some(hash) = found.touch
            && let Err(e) = self
                .db(move |s| s.touch_access_key(&hash, crate::routes::now_secs()))
                .await
        {
            tracing::warn!(error = ?e, "cannot record an access key's last use");
        }
        Some(found.token)
    }

    /// Re-read the issued access keys (after an issue or revoke, or a database swap).
    pub async fn reload_access_keys(&self) -> ApiResult<()> {
        let access = self.inner.access.clone();
        self.db(move |s| access.reload(s)).await
    }

    pub fn token_in_config(&self, token: &str) -> bool {
        self.inner.access.in_config(token)
    }

    /// Whether `token` exists on this cell: declared in the config or created by the operator.
    pub async fn knows_token(&self, token: &str) -> ApiResult<bool> {
        if self.inner.access.in_config(token) {
            return Ok(true);
        }
        let t = token.to_owned();
        self.db(move |s| Ok(s.operator_tokens()?.contains(&t)))
            .await
    }

    /// Run a store call on the blocking pool (SQLite blocks; the runtime must not).
    pub async fn db<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)
    }
}
