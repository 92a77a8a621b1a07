//! Generation through keyfrag's client (`--keygen --runs N`), cells-only or in customer mode
//! (`--customer-fragment`): N generations of one size, one after the other, each a session key
//! deleted afterwards. Wall time (median, p90) and, in customer mode, the customer party's
//! counters: candidate pairs, µs per pair (wall time over pairs) and bytes per pair (every
//! body to and from the cells over pairs). In cells-only mode no party reports its pairs to
//! the client, so the per-pair figures are left out.
//!
//! Minutes per run in customer mode at RSA-2048: the coordinator runs the real benchmark on an
//! idle machine; tests never time anything.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use keyfrag_client::Cluster;
use keyfrag_client::cluster::KeygenOptions;
use keyfrag_core::customer::CustomerSeed;
use serde::Serialize;

use super::keygen::{Summary, summarize};
use super::report::{Machine, loadavg};
use super::{DevCluster, STOP, install_sigint};
use crate::keys::token_cluster;

/// A session key's lease: long enough for one run, short enough that a crash cleans up.
const LEASE_SECS: u64 = 3600;

/// What `--keygen --runs N` measures.
#[derive(Clone, Debug)]
pub struct RelayKeygenOptions {
    pub runs: usize,
    pub bits: u32,
    /// Customer mode: `Some(None)` = the dev cluster's own fragment (with `dev_cluster`),
    /// `Some(Some(file))` = this file, opened with `pin`.
    pub customer_fragment: Option<Option<PathBuf>>,
    pub pin: String,
    pub token_label: Option<String>,
    pub dev_cluster: bool,
    pub json: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RelayKeygenRow {
    pub bits: u32,
    pub mode: &'static str,
    pub runs: usize,
    pub failed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub wall: Option<Summary>,
    pub wall_samples_ms: Vec<f64>,
    pub waves: Vec<usize>,
    pub bytes: Vec<usize>,
    /// Customer mode: candidate pairs per run, and the totals' ratios.
    pub pairs: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub us_per_pair: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_pair: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Document<'a> {
    machine: &'a Machine,
    cells: usize,
    row: &'a RelayKeygenRow,
}

fn open_seed(file: &Path, pin: &str) -> Result<CustomerSeed, String> {
    keyfrag_client::customer_file::load(file)
        .map_err(|e| e.to_string())?
        .open_with_pin(pin.as_bytes())
        .map_err(|e| format!("{}: {e}", file.display()))
}

/// N generations; failures are counted (and the first reported), not fatal, except a cancel.
fn measure(
    cluster: &Cluster,
    opts: &RelayKeygenOptions,
    seed: Option<&CustomerSeed>,
) -> Result<RelayKeygenRow, String> {
    let mut row = RelayKeygenRow {
        bits: opts.bits,
        mode: if seed.is_some() {
            "customer"
        } else {
            "cells-only"
        },
        runs: 0,
        failed: 0,
        first_error: None,
        wall: None,
        wall_samples_ms: Vec::new(),
        waves: Vec::new(),
        bytes: Vec::new(),
        pairs: Vec::new(),
        us_per_pair: None,
        bytes_per_pair: None,
    };
    let kopts = KeygenOptions {
        lease_secs: Some(LEASE_SECS),
        pooled: false,
        customer: seed,
    };
    for i in 0..opts.runs {
        if STOP.load(Ordering::Acquire) {
            break;
        }
        let uid = keyfrag_core::random::uid_hex().map_err(|e| e.to_string())?;
        row.runs += 1;
        match cluster.generate_rsa_key_report(&uid, opts.bits, &kopts, &STOP, &|_, _| {}) {
            Ok(r) => {
                let ms = r.elapsed.as_secs_f64() * 1000.0;
                let pairs = r.customer.as_ref().map(|s| s.pairs);
                eprintln!(
                    "bench: {} RSA-{} run {}: {:.1} s, {} waves, {:.1} MB{}",
                    row.mode,
                    opts.bits,
                    i + 1,
                    ms / 1000.0,
                    r.waves,
                    (r.bytes_up + r.bytes_down) as f64 / 1e6,
                    pairs.map_or_else(String::new, |p| format!(", {p} pairs"))
                );
                row.wall_samples_ms.push(ms);
                row.waves.push(r.waves);
                row.bytes.push(r.bytes_up + r.bytes_down);
                row.pairs.extend(pairs);
                if let Err(e) = cluster.delete_key(&uid) {
                    eprintln!("bench: delete {uid}: {} (its lease ends it)", e.message);
                }
            }
            Err(e) if e.kind == keyfrag_client::ErrorKind::Cancelled => break,
            Err(e) => {
                eprintln!("bench: run {} failed: {}", i + 1, e.message);
                row.failed += 1;
                row.first_error.get_or_insert(e.message);
            }
        }
    }
    row.wall = summarize(&row.wall_samples_ms);
    per_pair(&mut row);
    Ok(row)
}

/// Totals over the successful runs: wall µs and bytes per candidate pair (customer mode).
fn per_pair(row: &mut RelayKeygenRow) {
    let pairs: u64 = row.pairs.iter().sum();
    if pairs == 0 || row.pairs.len() != row.wall_samples_ms.len() {
        return;
    }
    let us: f64 = row.wall_samples_ms.iter().sum::<f64>() * 1000.0;
    row.us_per_pair = Some(us / pairs as f64);
    row.bytes_per_pair = Some(row.bytes.iter().sum::<usize>() as f64 / pairs as f64);
}

fn table(machine: &Machine, row: &RelayKeygenRow) -> String {
    let mut out = format!(
        "keyfrag bench --keygen --runs {} — RSA-{} {} — {} × {} (load {:?} → {:?})\n",
        row.runs,
        row.bits,
        row.mode,
        machine.nproc,
        machine.cpu_model,
        machine.loadavg_start,
        machine.loadavg_end
    );
    if let Some(w) = &row.wall {
        out.push_str(&format!(
            "  wall: median {:.1} s, p90 {:.1} s (min {:.1}, max {:.1}) over {} runs, {} failed\n",
            w.median_ms / 1000.0,
            w.p90_ms / 1000.0,
            w.min_ms / 1000.0,
            w.max_ms / 1000.0,
            row.wall_samples_ms.len(),
            row.failed
        ));
    } else {
        out.push_str(&format!("  no successful run ({} failed)\n", row.failed));
    }
    if let (Some(us), Some(b)) = (row.us_per_pair, row.bytes_per_pair) {
        let mut pairs = row.pairs.clone();
        pairs.sort_unstable();
        out.push_str(&format!(
            "  candidate pairs: median {} ({:?}); {:.0} µs and {:.0} bytes per pair\n",
            pairs[pairs.len() / 2],
            row.pairs,
            us,
            b
        ));
    }
    if let Some(e) = &row.first_error {
        out.push_str(&format!("  first failure: {e}\n"));
    }
    out
}

/// `keyfrag bench --keygen --runs N [--customer-fragment [FILE]]`.
pub fn run(opts: &RelayKeygenOptions) -> Result<(), String> {
    if opts.runs == 0 {
        return Err("--runs needs at least one run".into());
    }
    install_sigint();
    let mut machine = Machine::probe();
    let dev = if opts.dev_cluster {
        Some(DevCluster::start_with(
            &opts.pin,
            opts.customer_fragment.is_some(),
        )?)
    } else {
        None
    };
    let config = dev.as_ref().map(|d| d.config.as_path());
    let cluster = token_cluster(config, opts.token_label.as_deref())?;
    let seed = match &opts.customer_fragment {
        None => None,
        Some(Some(file)) => Some(open_seed(file, &opts.pin)?),
        Some(None) => match &cluster.config().customer_fragment {
            Some(file) => Some(open_seed(file, &opts.pin)?),
            None => {
                return Err(
                    "--customer-fragment needs a FILE (or --dev-cluster, which makes one)".into(),
                );
            }
        },
    };
    let row = measure(&cluster, opts, seed.as_ref())?;
    drop(seed);
    machine.loadavg_end = loadavg();
    print!("{}", table(&machine, &row));
    if let Some(path) = &opts.json {
        let doc = Document {
            machine: &machine,
            cells: cluster.cell_count(),
            row: &row,
        };
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_pair_figures_are_totals_over_pairs() {
        let mut row = RelayKeygenRow {
            bits: 2048,
            mode: "customer",
            runs: 2,
            failed: 0,
            first_error: None,
            wall: None,
            wall_samples_ms: vec![1000.0, 3000.0],
            waves: vec![10, 30],
            bytes: vec![1_000, 3_000],
            pairs: vec![100, 300],
            us_per_pair: None,
            bytes_per_pair: None,
        };
        per_pair(&mut row);
        assert_eq!(row.us_per_pair, Some(10_000.0));
        assert_eq!(row.bytes_per_pair, Some(10.0));
        // Cells-only: no pairs, no per-pair figures.
        row.pairs.clear();
        row.us_per_pair = None;
        per_pair(&mut row);
        assert_eq!(row.us_per_pair, None);
    }
}
