//! Command-line arguments of `keyfrag bench` (clap), turned into [`BenchOptions`].

use std::path::PathBuf;

use super::{BenchOptions, ModuleSpec, parse_list, parse_ops};

/// Measure a PKCS#11 module (and optionally a second one, side by side).
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The PKCS#11 module to measure (path to the shared library); not needed with --refresh.
    #[arg(long, required_unless_present_any = ["refresh", "kernel", "runs", "client_path"])]
    pub module: Option<PathBuf>,
    /// User PIN of its token.
    #[arg(long, default_value = "1234")]
    pub pin: String,
    /// Its token's label (default: keyfrag-dev with --dev-cluster, else the first
    /// initialised token).
    #[arg(long)]
    pub token_label: Option<String>,
    /// RSA key sizes, comma-separated.
    #[arg(long, default_value = "2048,3072")]
    pub bits: String,
    /// Concurrent session counts (one thread per session), comma-separated.
    #[arg(long, default_value = "1,2,8,32")]
    pub sessions: String,
    /// Measurement window per point, in seconds (after the warm-up).
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Warm-up per point, in seconds (operations run but are not counted).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Operations: all, or a comma-separated subset of sign-pkcs, sign-pss, decrypt-oaep,
    /// verify-pkcs, encrypt-oaep, digest-sha256.
    #[arg(long, default_value = "all")]
    pub ops: String,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// A second module measured in the same run; the table gets ours/theirs ratios.
    #[arg(long)]
    pub compare: Option<PathBuf>,
    /// User PIN of the second module's token.
    #[arg(long, default_value = "1234")]
    pub compare_pin: String,
    /// The second module's token label (default: its first initialised token).
    #[arg(long)]
    pub compare_token_label: Option<String>,
    /// Start a 3-cell keyfrag dev cluster in a temporary directory for the run (KEYFRAG_CONF
    /// points the module at it); stopped and removed at the end.
    #[arg(long)]
    pub dev_cluster: bool,
    /// Memory mode: run this many CKM_SHA256_RSA_PKCS signatures (first --bits size) and
    /// report the process's resident size before and after, instead of the throughput runs.
    #[arg(long)]
    pub memory: Option<u64>,
    /// Sessions for the memory mode.
    #[arg(long, default_value_t = 8)]
    pub memory_sessions: usize,
    /// Key-generation mode: time this many C_GenerateKeyPair (CKM_RSA_PKCS_KEY_PAIR_GEN,
    /// session keys, destroyed after each) per --bits size on each module, instead of the
    /// throughput runs. One count for every size, or one per size (`30,5,2`). Bare, with
    /// --runs: generation through keyfrag's client instead (`keygen_relay.rs`).
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    pub keygen: Option<String>,
    /// With a bare --keygen: this many generations through keyfrag's client (no module), of
    /// the first --bits size, cells-only or with --customer-fragment; on $KEYFRAG_CONF's token
    /// (--token-label) or a --dev-cluster. Median/p90 wall time, pairs, µs and bytes per pair.
    #[arg(long)]
    pub runs: Option<usize>,
    /// With --runs: customer mode, the customer party run by the client from this file
    /// (opened with --pin; its card must be pinned on the token). Bare with --dev-cluster:
    /// the dev cluster's own fragment, pinned by `dev up`.
    #[arg(long, num_args = 0..=1)]
    pub customer_fragment: Option<Option<PathBuf>>,
    /// Refresh mode: store this many token keys by import (per --bits size) and time
    /// `keyfrag refresh --key` one key at a time and `keyfrag refresh --all` over all of them,
    /// through keyfrag's client (no module). With --dev-cluster, on a fresh local cluster;
    /// else on $KEYFRAG_CONF's token (the keys are deleted at the end).
    #[arg(long)]
    pub refresh: Option<usize>,
    /// AES mode (`aes.rs`): AES-256-GCM encryption on 64 B and 4 KiB messages, keyfrag with
    /// the data key cache off and on and with per-message keys, next to --compare.
    #[arg(long)]
    pub aes: bool,
    /// Refresh mode: runs in flight at once for `--all`.
    #[arg(long, default_value_t = keyfrag_client::cluster::DEFAULT_PARALLEL)]
    pub refresh_parallel: usize,
    /// Kernel mode: only the cells' partial exponentiation against OpenSSL's constant-time
    /// modexp, per --bits size, one thread and on every core (no module). The default run
    /// measures it too, next to the throughput points.
    #[arg(long)]
    pub kernel: bool,
    /// Latency-probe mode: only the 1-session client-path probe (issue 7's latency overhead,
    /// `client_path.rs`) per --bits size for --seconds, on keys made by the rsa crate and
    /// imported; no module, no throughput points, no kernel. Short enough to repeat for
    /// interleaved A/B runs of two builds.
    #[arg(long)]
    pub client_path: bool,
}

impl BenchArgs {
    pub fn options(&self) -> Result<BenchOptions, String> {
        Ok(BenchOptions {
            module: ModuleSpec {
                path: self.module.clone().unwrap_or_default(),
                pin: self.pin.clone(),
                token_label: self.token_label.clone(),
            },
            compare: self.compare.as_ref().map(|p| ModuleSpec {
                path: p.clone(),
                pin: self.compare_pin.clone(),
                token_label: self.compare_token_label.clone(),
            }),
            bits: parse_list(&self.bits).map_err(|e| format!("--bits: {e}"))?,
            sessions: parse_list(&self.sessions).map_err(|e| format!("--sessions: {e}"))?,
            seconds: self.seconds,
            warmup: self.warmup,
            ops: parse_ops(&self.ops).map_err(|e| format!("--ops: {e}"))?,
            json: self.json.clone(),
            dev_cluster: self.dev_cluster,
            memory: self.memory,
            memory_sessions: self.memory_sessions.max(1),
            keygen: self
                .keygen
                .as_deref()
                .map(|k| {
                    if k.is_empty() {
                        Err("a count per size (module mode), or use --runs".to_string())
                    } else {
                        parse_list(k)
                    }
                })
                .transpose()
                .map_err(|e| format!("--keygen: {e}"))?,
            refresh: self.refresh,
            refresh_parallel: self.refresh_parallel.max(1),
            kernel_only: self.kernel,
            client_path_only: self.client_path,
            aes: self.aes,
        })
    }

    /// `--keygen --runs N`: generation through the client.
    pub fn relay_keygen(
        &self,
        runs: usize,
    ) -> Result<super::keygen_relay::RelayKeygenOptions, String> {
        if self.keygen.as_deref() != Some("") {
            return Err("--runs goes with a bare --keygen".into());
        }
        let bits: Vec<u32> = parse_list(&self.bits).map_err(|e| format!("--bits: {e}"))?;
        Ok(super::keygen_relay::RelayKeygenOptions {
            runs,
            bits: *bits.first().ok_or("--bits needs a size")?,
            customer_fragment: self.customer_fragment.clone(),
            pin: self.pin.clone(),
            token_label: self.token_label.clone(),
            dev_cluster: self.dev_cluster,
            json: self.json.clone(),
        })
    }
}

/// `keyfrag bench`.
pub fn main(args: &BenchArgs) -> Result<(), String> {
    if let Some(runs) = args.runs {
        return super::keygen_relay::run(&args.relay_keygen(runs)?);
    }
    if args.customer_fragment.is_some() {
        return Err("--customer-fragment goes with --keygen --runs".into());
    }
    super::run(&args.options()?)
}
