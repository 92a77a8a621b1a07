//! Latency overhead at 1 session (issue 7): end-to-end time minus the time the slowest cell
//! spent on the request as that cell measures it — `handled_us` in its partial response, its
//! wall time from the request entering its router to the response being ready. The same
//! figure with `compute_us` (the exponentiation alone) is reported beside it: the difference
//! is what a cell waits for inside (store, blocking pool, a core).
//!
//! A module loaded by path hides the cells' answers, so this runs the module's private-key
//! path through keyfrag's client in the benchmark process, one operation at a time, exactly
//! as `src/mechanism/cells.rs` does for `CKM_SHA256_RSA_PKCS` (hash, DigestInfo, PKCS#1 v1.5
//! padding, blind with a pair from a per-key pool, every cell's partial over the pooled
//! connections with x'⁻¹ and the next blinding pair computed meanwhile, combine, verify), and
//! records for the SAME operation its wall time and the cells' `handled_us` and `compute_us`. The key is imported for the probe (same size as the module's) and deleted after.
//! What the module adds on top of this path (PKCS#11 dispatch, session and object lookup) is
//! the difference between its own 1-session p50 and this path's — reported beside it.

use std::time::{Duration, Instant};

use keyfrag_client::{Cluster, UserKind};
use keyfrag_core::hash::HashAlg;
use keyfrag_core::padding::pkcs1v15;
use keyfrag_core::rsa_combine::{self, BlindingPool};
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_core::rsa_share::split_exponent;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde::Serialize;

use super::stats::percentile;

/// Target of the issue: (e2e − slowest cell's handled time) ÷ e2e at p50.
pub const OVERHEAD_TARGET: f64 = 0.15;

/// Operations before the window (connections, TLS sessions, caches, the blinding pool).
const WARMUP_OPS: usize = 5;

/// Blinding pairs kept for the probe's key, as the module keeps per key.
const POOL_PAIRS: usize = 4;

#[derive(Clone, Debug, Serialize)]
pub struct ClientPathRow {
    pub bits: usize,
    pub cells: usize,
    pub samples: usize,
    /// Wall time of the whole client path per operation (µs): p50, p90.
    pub e2e_p50_us: f64,
    pub e2e_p90_us: f64,
    /// The slowest cell's own wall time on the request (`handled_us`), p50 (µs).
    pub slowest_handled_p50_us: f64,
    /// The largest compute time among the cells for the same operation (µs), p50.
    pub slowest_compute_p50_us: f64,
    /// Per operation (e2e − slowest handled) ÷ e2e: p50 (the figure judged) and p90.
    pub overhead_p50: f64,
    pub overhead_p90: f64,
    /// Per operation e2e − slowest handled (µs), p50: the wire's, TLS's and the client's cost.
    pub overhead_p50_us: f64,
    /// The same with the compute time alone subtracted (the figure before cells reported
    /// `handled_us`): (e2e − slowest compute) ÷ e2e, p50 and p90.
    pub overhead_compute_p50: f64,
    pub overhead_compute_p90: f64,
    /// Per operation, the slowest cell's handled − its compute (µs), p50: what that cell
    /// waited for inside (store calls, thread hand-overs, a core).
    pub in_cell_not_compute_p50_us: f64,
    /// Where the time goes (µs, p50 of each part): hash, pad and blind before the request;
    /// the fan-out to the cells (request sent to last answer parsed); combine and verify after.
    pub before_p50_us: f64,
    pub round_trip_p50_us: f64,
    pub combine_p50_us: f64,
    /// Per operation round trip − slowest handled (µs), p50: the wire, TLS, HTTP, JSON and
    /// whatever happens in a cell before its router sees the request.
    pub wire_p50_us: f64,
    /// A fan-out without compute (`GET /v1/keys/{uid}` to every cell: access key, one store
    /// read, JSON), one after each operation (µs, p50): the floor of the wire and HTTP path.
    pub bare_round_trip_p50_us: f64,
    /// The cells' compute summed over the cells and spread over this machine's cores (µs,
    /// p50): with more cells than cores on one machine, the cells cannot all compute at once,
    /// and e2e can never go below this however small the overhead.
    pub cores: usize,
    pub compute_per_core_p50_us: f64,
    /// Per operation (e2e − max(slowest compute, summed compute ÷ cores)) ÷ e2e, p50: the
    /// overhead with the CPU contention of co-located cells taken out (not the issue's
    /// definition; reported beside it to separate the machine's share from the code's).
    pub overhead_beyond_contention_p50: f64,
}

/// What one operation cost: wall time and the slowest cell's times, in µs.
struct Sample {
    e2e_us: u64,
    /// Largest `handled_us` (a cell without the field counts its compute_us).
    slowest_handled_us: u64,
    /// That cell's compute_us.
    slowest_handled_compute_us: u64,
    /// Largest compute_us.
    slowest_us: u64,
    before_us: u64,
    round_trip_us: u64,
    combine_us: u64,
    bare_us: u64,
    /// Sum of every cell's compute_us.
    total_compute_us: u64,
}

fn sign_once(
    cluster: &Cluster,
    uid: &str,
    public: &RsaPublic,
    pool: &BlindingPool,
) -> Result<Sample, String> {
    let message = [0x5au8; 64];
    let started = Instant::now();
    let t = HashAlg::Sha256.digest_info(&HashAlg::Sha256.digest(&message));
    let em = pkcs1v15::sign_pad(&t, public.size()).map_err(|e| e.to_string())?;
    let pair = pool.take().map_err(|e| e.to_string())?;
    let blinded = rsa_combine::blind_with(public, &em, pair).map_err(|e| e.to_string())?;
    let sent = Instant::now();
    let (partials, inverse) = cluster
        .rsa_partials_once_beside(uid, &blinded.input, || {
            let inverse = rsa_combine::input_inverse(public, &blinded.input);
            let _ = pool.refill(1);
            inverse
        })
        .map_err(|e| format!("partials: {}", e.message))?;
    let answered = Instant::now();
    let outputs = partials.outputs();
    let signature = inverse
        .and_then(|inv| rsa_combine::combine_with_inverse(public, &blinded, &outputs, &inv))
        .map_err(|e| format!("combine: {e}"))?;
    let done = Instant::now();
    let us = |d: Duration| d.as_micros() as u64;
    let e2e_us = us(done - started);
    let bare = Instant::now();
    cluster
        .key_status(uid)
        .map_err(|e| format!("key status: {}", e.message))?;
    let bare_us = us(bare.elapsed());
    if signature.expose().len() != public.size() {
        return Err("signature of the wrong length".into());
    }
    let slowest_us = partials
        .cells
        .iter()
        .map(|c| c.compute_us)
        .max()
        .unwrap_or(0);
    let total_compute_us = partials.cells.iter().map(|c| c.compute_us).sum();
    let (slowest_handled_us, slowest_handled_compute_us) = partials
        .cells
        .iter()
        .map(|c| (c.handled_us.max(c.compute_us), c.compute_us))
        .max()
        .unwrap_or((0, 0));
    Ok(Sample {
        e2e_us,
        slowest_handled_us,
        slowest_handled_compute_us,
        slowest_us,
        before_us: us(sent - started),
        round_trip_us: us(answered - sent),
        combine_us: us(done - answered),
        bare_us,
        total_compute_us,
    })
}

/// Import `key` under a fresh uid, log the user in, sign for `window` one operation at a
/// time, and summarise; the key is deleted and the login revoked whatever happens.
pub fn measure(
    cluster: &Cluster,
    pin: &str,
    key: &rsa::PrivateKey,
    window: Duration,
) -> Result<ClientPathRow, String> {
    let bits = key.n().bit_width() as usize;
    let n = key.n().to_be_bytes_trimmed_vartime();
    let e = key.e().to_be_bytes_trimmed_vartime();
    let d = key.d().to_be_bytes_trimmed_vartime();
    let public = RsaPublic::new(&n, &e).map_err(|e| e.to_string())?;
    let uid = keyfrag_core::random::uid_hex().map_err(|e| e.to_string())?;
    let shares = split_exponent(&d, bits, cluster.cell_count()).map_err(|e| e.to_string())?;
    cluster
        .put_rsa_key(&uid, &n, &e, shares, None)
        .map_err(|e| format!("import: {}", e.message))?;
    let result = cluster
        .login(UserKind::User, pin)
        .map_err(|e| format!("login: {}", e.message))
        .and_then(|()| {
            let pool = BlindingPool::new(public.clone(), POOL_PAIRS);
            run(cluster, &uid, &public, &pool, window)
        });
    cluster.logout();
    if let Err(e) = cluster.delete_key(&uid) {
        eprintln!("bench: deleting the probe key {uid}: {}", e.message);
    }
    let samples = result?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    summarize(bits, cluster.cell_count(), cores, &samples)
        .ok_or_else(|| "no operation completed in the window".into())
}

fn run(
    cluster: &Cluster,
    uid: &str,
    public: &RsaPublic,
    pool: &BlindingPool,
    window: Duration,
) -> Result<Vec<Sample>, String> {
    for _ in 0..WARMUP_OPS {
        sign_once(cluster, uid, public, pool)?;
    }
    let start = Instant::now();
    let mut samples = Vec::new();
    while start.elapsed() < window && !super::STOP.load(std::sync::atomic::Ordering::Relaxed) {
        samples.push(sign_once(cluster, uid, public, pool)?);
    }
    Ok(samples)
}

fn summarize(bits: usize, cells: usize, cores: usize, samples: &[Sample]) -> Option<ClientPathRow> {
    let mut e2e: Vec<u64> = samples.iter().map(|s| s.e2e_us).collect();
    let mut slowest: Vec<u64> = samples.iter().map(|s| s.slowest_us).collect();
    let mut over_us: Vec<u64> = samples
        .iter()
        .map(|s| s.e2e_us.saturating_sub(s.slowest_handled_us))
        .collect();
    // Fractions in parts per million, so the nearest-rank helper over u64 applies.
    let ppm = |part: u64, s: &Sample| s.e2e_us.saturating_sub(part) * 1_000_000 / s.e2e_us.max(1);
    let mut over_ppm: Vec<u64> = samples
        .iter()
        .map(|s| ppm(s.slowest_handled_us, s))
        .collect();
    let mut over_compute_ppm: Vec<u64> = samples.iter().map(|s| ppm(s.slowest_us, s)).collect();
    over_compute_ppm.sort_unstable();
    let sorted = |f: fn(&Sample) -> u64| {
        let mut v: Vec<u64> = samples.iter().map(f).collect();
        v.sort_unstable();
        v
    };
    let handled = sorted(|s| s.slowest_handled_us);
    let in_cell = sorted(|s| {
        s.slowest_handled_us
            .saturating_sub(s.slowest_handled_compute_us)
    });
    let before = sorted(|s| s.before_us);
    let round_trip = sorted(|s| s.round_trip_us);
    let combine = sorted(|s| s.combine_us);
    let wire = sorted(|s| s.round_trip_us.saturating_sub(s.slowest_handled_us));
    let bare = sorted(|s| s.bare_us);
    let per_core = |s: &Sample| s.total_compute_us / cores.max(1) as u64;
    let mut spread: Vec<u64> = samples.iter().map(per_core).collect();
    spread.sort_unstable();
    let mut beyond_ppm: Vec<u64> = samples
        .iter()
        .map(|s| {
            let floor = s.slowest_us.max(per_core(s));
            s.e2e_us.saturating_sub(floor) * 1_000_000 / s.e2e_us.max(1)
        })
        .collect();
    beyond_ppm.sort_unstable();
    for v in [&mut e2e, &mut slowest, &mut over_us, &mut over_ppm] {
        v.sort_unstable();
    }
    Some(ClientPathRow {
        bits,
        cells,
        samples: samples.len(),
        e2e_p50_us: percentile(&e2e, 50.0)? as f64,
        e2e_p90_us: percentile(&e2e, 90.0)? as f64,
        slowest_handled_p50_us: percentile(&handled, 50.0)? as f64,
        slowest_compute_p50_us: percentile(&slowest, 50.0)? as f64,
        overhead_p50: percentile(&over_ppm, 50.0)? as f64 / 1e6,
        overhead_p90: percentile(&over_ppm, 90.0)? as f64 / 1e6,
        overhead_p50_us: percentile(&over_us, 50.0)? as f64,
        overhead_compute_p50: percentile(&over_compute_ppm, 50.0)? as f64 / 1e6,
        overhead_compute_p90: percentile(&over_compute_ppm, 90.0)? as f64 / 1e6,
        in_cell_not_compute_p50_us: percentile(&in_cell, 50.0)? as f64,
        before_p50_us: percentile(&before, 50.0)? as f64,
        round_trip_p50_us: percentile(&round_trip, 50.0)? as f64,
        combine_p50_us: percentile(&combine, 50.0)? as f64,
        wire_p50_us: percentile(&wire, 50.0)? as f64,
        bare_round_trip_p50_us: percentile(&bare, 50.0)? as f64,
        cores,
        compute_per_core_p50_us: percentile(&spread, 50.0)? as f64,
        overhead_beyond_contention_p50: percentile(&beyond_ppm, 50.0)? as f64 / 1e6,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample whose slowest cell computed for `compute` within `handled` (fixed numbers).
    fn sample(e2e: u64, handled: u64, compute: u64, round_trip: u64, total: u64) -> Sample {
        Sample {
            e2e_us: e2e,
            slowest_handled_us: handled,
            slowest_handled_compute_us: compute,
            slowest_us: compute,
            before_us: 10,
            round_trip_us: round_trip,
            combine_us: 40,
            bare_us: 300,
            total_compute_us: total,
        }
    }

    #[test]
    fn overhead_is_per_operation() {
        // No timing: handled 10 %, 30 %, 50 % below e2e → p50 30 %; compute 100 µs less each.
        let s = [
            sample(1000, 900, 800, 950, 0),
            sample(2000, 1400, 1300, 1950, 0),
            sample(400, 200, 100, 350, 0),
        ];
        let r = summarize(2048, 3, 2, &s).unwrap();
        assert_eq!(r.samples, 3);
        assert!((r.overhead_p50 - 0.3).abs() < 1e-9);
        assert!((r.overhead_p90 - 0.5).abs() < 1e-9);
        // With compute alone subtracted: 20 %, 35 %, 75 %.
        assert!((r.overhead_compute_p50 - 0.35).abs() < 1e-9);
        assert!((r.overhead_compute_p90 - 0.75).abs() < 1e-9);
        assert_eq!(r.e2e_p50_us, 1000.0);
        assert_eq!(r.slowest_handled_p50_us, 900.0);
        assert_eq!(r.slowest_compute_p50_us, 800.0);
        assert_eq!(r.overhead_p50_us, 200.0);
        assert_eq!(r.in_cell_not_compute_p50_us, 100.0);
        assert_eq!(r.wire_p50_us, 150.0);
        assert_eq!(r.round_trip_p50_us, 950.0);
        // No compute summed: the contention floor is the slowest compute.
        assert!((r.overhead_beyond_contention_p50 - 0.35).abs() < 1e-9);
        // Three cells of 900 µs on 2 cores: 1350 µs floor, of a 1500 µs e2e → 10 %.
        let contended = [sample(1500, 900, 900, 1500, 2700)];
        let r = summarize(2048, 3, 2, &contended).unwrap();
        assert!((r.overhead_p50 - 0.4).abs() < 1e-9);
        assert!((r.overhead_beyond_contention_p50 - 0.1).abs() < 1e-9);
        assert_eq!(r.compute_per_core_p50_us, 1350.0);
        assert!(summarize(2048, 3, 2, &[]).is_none());
    }
}
