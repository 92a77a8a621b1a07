//! Refresh mode (`--refresh N`): the cost of proactive refresh, through keyfrag's client (no
//! PKCS#11 module is involved: refresh needs no session and no PIN).
//!
//! Per `--bits` size: N token keys are stored by import (one key made by the `rsa` crate,
//! split afresh under each uid — a refresh costs the same whichever key it is, and making N
//! keys would take longer than refreshing them), then
//! - per-key time: `refresh_key` on a few keys one after the other (what one
//!   `keyfrag refresh --key` takes, round trips included);
//! - throughput: `refresh_all` over the N keys with `--refresh-parallel` runs in flight
//!   (what `keyfrag refresh --all` does), as keys per second.
//!
//! Every key is then checked to be settled at the epoch it should have, and deleted.

use std::path::Path;
use std::time::Instant;

use keyfrag_client::Cluster;
use keyfrag_core::rsa_share::split_exponent;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde::Serialize;

use super::keygen::{Summary, summarize};
use super::report::{Machine, loadavg};
use super::{BenchOptions, DevCluster};
use crate::keys::token_cluster;

/// Keys refreshed one at a time for the per-key figure.
const SINGLE_SAMPLES: usize = 20;

#[derive(Clone, Debug, Serialize)]
pub struct RefreshRow {
    pub bits: usize,
    pub keys: usize,
    pub import_secs: f64,
    /// `refresh_key`, one key after another (ms).
    pub single: Option<Summary>,
    pub single_samples_ms: Vec<f64>,
    /// `refresh_all` over every key.
    pub parallel: usize,
    pub all_secs: f64,
    pub keys_per_sec: f64,
    pub failed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct RefreshDocument<'a> {
    machine: &'a Machine,
    cells: usize,
    rows: Vec<RefreshRow>,
}

fn import(cluster: &Cluster, bits: usize, keys: usize) -> Result<Vec<String>, String> {
    eprintln!("bench: generating an RSA-{bits} key with the rsa crate (for import)");
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits)
        .map_err(|e| format!("RSA-{bits} key generation: {e}"))?;
    let (n, e) = (
        key.n().to_be_bytes_trimmed_vartime(),
        key.e().to_be_bytes_trimmed_vartime(),
    );
    let d = key.d().to_be_bytes_trimmed_vartime();
    let mut uids = Vec::with_capacity(keys);
    for _ in 0..keys {
        let uid = keyfrag_core::random::uid_hex().map_err(|e| e.to_string())?;
        let shares =
            split_exponent(&d, bits, cluster.cell_count()).map_err(|e| format!("split: {e}"))?;
        cluster
            .put_rsa_key(&uid, &n, &e, shares, None)
            .map_err(|e| format!("import: {}", e.message))?;
        uids.push(uid);
    }
    Ok(uids)
}

fn size(
    cluster: &Cluster,
    bits: usize,
    keys: usize,
    parallel: usize,
) -> Result<RefreshRow, String> {
    let started = Instant::now();
    let uids = import(cluster, bits, keys)?;
    let import_secs = started.elapsed().as_secs_f64();
    eprintln!("bench: RSA-{bits}: {keys} keys imported in {import_secs:.1} s");

    let mut single_samples_ms = Vec::new();
    for uid in uids.iter().take(SINGLE_SAMPLES) {
        let t = Instant::now();
        cluster
            .refresh_key(uid)
            .map_err(|e| format!("refresh {uid}: {}", e.message))?;
        single_samples_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let single = summarize(&single_samples_ms);
    if let Some(s) = &single {
        eprintln!(
            "bench: RSA-{bits}: one key at a time: p50 {:.1} ms, p90 {:.1} ms",
            s.median_ms, s.p90_ms
        );
    }

    let t = Instant::now();
    let results = cluster.refresh_all(parallel).map_err(|e| e.message)?;
    let all_secs = t.elapsed().as_secs_f64();
    let failed: Vec<&str> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().err().map(|e| e.message.as_str()))
        .collect();
    let keys_per_sec = (results.len() - failed.len()) as f64 / all_secs.max(1e-9);
    eprintln!(
        "bench: RSA-{bits}: refresh --all: {} keys in {all_secs:.2} s = {keys_per_sec:.1} keys/s \
         ({} failed)",
        results.len(),
        failed.len()
    );

    // Correctness: every key settled at its epoch (1 + one refresh, + one more if sampled).
    let sampled = SINGLE_SAMPLES.min(uids.len());
    for (i, k) in cluster
        .list_keys_by_cell()
        .map_err(|e| e.message)?
        .iter()
        .flatten()
        .enumerate()
    {
        let want = if uids[..sampled].contains(&k.uid) {
            3
        } else {
            2
        };
        let settled = k.pending.is_none() && k.previous_epoch.is_none();
        if uids.contains(&k.uid) && (k.epoch != want || !settled) && failed.is_empty() {
            return Err(format!(
                "key {} (entry {i}) is not settled at epoch {want}",
                k.uid
            ));
        }
    }
    for uid in &uids {
        cluster
            .delete_key(uid)
            .map_err(|e| format!("delete {uid}: {}", e.message))?;
    }
    Ok(RefreshRow {
        bits,
        keys,
        import_secs,
        single,
        single_samples_ms,
        parallel,
        all_secs,
        keys_per_sec,
        failed: failed.len(),
        first_error: failed.first().map(|e| e.to_string()),
    })
}

fn table(machine: &Machine, rows: &[RefreshRow]) -> String {
    let mut out = format!(
        "keyfrag bench --refresh — {} × {} (load {:?} → {:?})\n",
        machine.nproc, machine.cpu_model, machine.loadavg_start, machine.loadavg_end
    );
    for r in rows {
        out.push_str(&format!(
            "RSA-{}: {} token keys (imported in {:.1} s)\n",
            r.bits, r.keys, r.import_secs
        ));
        if let Some(s) = &r.single {
            out.push_str(&format!(
                "  one key at a time ({} keys): min {:.1} / p50 {:.1} / p90 {:.1} / max {:.1} ms\n",
                r.single_samples_ms.len(),
                s.min_ms,
                s.median_ms,
                s.p90_ms,
                s.max_ms
            ));
        }
        out.push_str(&format!(
            "  refresh --all ({} in flight): {} keys in {:.2} s = {:.1} keys/s, {} failed\n",
            r.parallel, r.keys, r.all_secs, r.keys_per_sec, r.failed
        ));
    }
    out
}

/// `--refresh N`.
pub fn run(opts: &BenchOptions, keys: usize) -> Result<(), String> {
    if keys == 0 {
        return Err("--refresh needs at least one key".into());
    }
    let mut machine = Machine::probe();
    let dev = if opts.dev_cluster {
        Some(DevCluster::start(&opts.module.pin)?)
    } else {
        None
    };
    let config = dev.as_ref().map(|d| d.config.as_path());
    let cluster = token_cluster(config, opts.module.token_label.as_deref())?;
    let mut rows = Vec::new();
    for &bits in &opts.bits {
        rows.push(size(&cluster, bits, keys, opts.refresh_parallel)?);
    }
    machine.loadavg_end = loadavg();
    print!("{}", table(&machine, &rows));
    if let Some(path) = &opts.json {
        write_json(path, &machine, cluster.cell_count(), rows)?;
    }
    Ok(())
}

fn write_json(
    path: &Path,
    machine: &Machine,
    cells: usize,
    rows: Vec<RefreshRow>,
) -> Result<(), String> {
    let doc = RefreshDocument {
        machine,
        cells,
        rows,
    };
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
}
