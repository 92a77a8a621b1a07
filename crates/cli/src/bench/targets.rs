//! Issue 7's targets, judged from one run's document: the kernel ratio, throughput against
//! the physical limit, the latency overhead at 1 session, public-key operations and digests
//! against the compared module. (Memory is judged in the memory run, `ops::memory`.)

use std::fmt::Write as _;

use serde::Serialize;

use super::client_path::{ClientPathRow, OVERHEAD_TARGET};
use super::kernel::KernelRow;
use super::report::Row;

pub const KERNEL_TARGET: f64 = 0.9;
pub const LIMIT_TARGET: f64 = 0.85;
pub const PUBLIC_TARGET: f64 = 0.8;

/// The physical limit of private operations at one size, and keyfrag's distance to it.
#[derive(Clone, Debug, Serialize)]
pub struct LimitRow {
    pub bits: usize,
    /// Parties computing a partial per operation: the cells, +1 with a customer fragment.
    pub parties: usize,
    /// OpenSSL's constant-time kernel on every core (ops/s): before the size's throughput
    /// points, after the run, and their mean (the figure used).
    pub aggregate_before: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate_after: Option<f64>,
    pub aggregate: f64,
    /// aggregate ÷ parties: private operations per second no implementation could exceed here.
    pub limit_ops: f64,
    /// The same with keyfrag's own kernel on every core (mean of before and after) ÷ parties:
    /// the ceiling for these cells' arithmetic, stricter when that kernel beats OpenSSL's.
    pub own_kernel_limit_ops: f64,
    /// threads × keyfrag's single-thread kernel rate (mean of before and after) ÷ parties: the
    /// ceiling on an idle machine. On a shared machine the all-core measurements are starved
    /// (a few measuring threads against everyone else's) while the cells' many threads are
    /// not, so this is the figure that stays meaningful under load.
    pub load_free_limit_ops: f64,
    /// Cores (one measuring thread each).
    pub threads: usize,
    /// (operation, sessions, ops/s, ÷ limit) for the private signing operations at the
    /// largest session count measured.
    pub measured: Vec<LimitPoint>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LimitPoint {
    pub op: &'static str,
    pub sessions: usize,
    pub ops_per_sec: f64,
    pub of_limit: f64,
    pub of_own_kernel_limit: f64,
    pub of_load_free_limit: f64,
}

/// One line of the "issue 7 targets" table.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub what: String,
    pub measured: String,
    pub target: String,
    pub met: bool,
    /// How far from the target (e.g. "×1.27 to go"); empty when met.
    pub distance: String,
}

pub fn limits(
    before: &[KernelRow],
    after: &[KernelRow],
    results: &[Row],
    parties: usize,
) -> Vec<LimitRow> {
    let mut out = Vec::new();
    for k in before {
        let after_ops = after
            .iter()
            .find(|a| a.bits == k.bits)
            .map(|a| a.openssl_all_cores_ops);
        let aggregate = match after_ops {
            Some(a) => (k.openssl_all_cores_ops + a) / 2.0,
            None => k.openssl_all_cores_ops,
        };
        let limit_ops = aggregate / parties.max(1) as f64;
        let own_after = after
            .iter()
            .find(|a| a.bits == k.bits)
            .map(|a| a.ours_all_cores_ops);
        let own = match own_after {
            Some(a) => (k.ours_all_cores_ops + a) / 2.0,
            None => k.ours_all_cores_ops,
        };
        let own_kernel_limit_ops = own / parties.max(1) as f64;
        let single = match after.iter().find(|a| a.bits == k.bits) {
            Some(a) => (k.ours_ops + a.ours_ops) / 2.0,
            None => k.ours_ops,
        };
        let load_free_limit_ops = k.threads as f64 * single / parties.max(1) as f64;
        let mut measured = Vec::new();
        for op in ["sign-pkcs", "sign-pss"] {
            let best = results
                .iter()
                .filter(|r| r.op == op && r.bits == Some(k.bits))
                .filter_map(|r| r.ours.as_ref().map(|m| (r.sessions, m.ops_per_sec)))
                .max_by_key(|(s, _)| *s);
            if let Some((sessions, ops_per_sec)) = best {
                measured.push(LimitPoint {
                    op,
                    sessions,
                    ops_per_sec,
                    of_limit: ops_per_sec / limit_ops,
                    of_own_kernel_limit: ops_per_sec / own_kernel_limit_ops,
                    of_load_free_limit: ops_per_sec / load_free_limit_ops,
                });
            }
        }
        out.push(LimitRow {
            bits: k.bits,
            parties,
            aggregate_before: k.openssl_all_cores_ops,
            aggregate_after: after_ops,
            aggregate,
            limit_ops,
            own_kernel_limit_ops,
            load_free_limit_ops,
            threads: k.threads,
            measured,
        });
    }
    out
}

fn at_least(what: String, measured: f64, target: f64, fmt: fn(f64) -> String) -> Target {
    let met = measured >= target;
    Target {
        what,
        measured: fmt(measured),
        target: format!("≥ {}", fmt(target)),
        met,
        distance: if met {
            String::new()
        } else {
            format!("×{:.2} to go", target / measured.max(f64::MIN_POSITIVE))
        },
    }
}

fn ratio_x(r: f64) -> String {
    format!("{r:.2}×")
}

fn percent(r: f64) -> String {
    format!("{:.0} %", r * 100.0)
}

pub fn judge(
    kernel: &[KernelRow],
    limits: &[LimitRow],
    latency: &[ClientPathRow],
    results: &[Row],
) -> Vec<Target> {
    let mut out = Vec::new();
    for k in kernel {
        out.push(at_least(
            format!("kernel RSA-{} (1 thread) vs OpenSSL ct", k.bits),
            k.ratio,
            KERNEL_TARGET,
            ratio_x,
        ));
    }
    for l in limits {
        for p in &l.measured {
            out.push(at_least(
                format!(
                    "RSA-{} {} at {} sessions ÷ limit ({:.0}/s)",
                    l.bits, p.op, p.sessions, l.limit_ops
                ),
                p.of_limit,
                LIMIT_TARGET,
                percent,
            ));
            out.push(at_least(
                format!(
                    "  same ÷ {} × own kernel 1t ({:.0}/s; load-free)",
                    l.threads, l.load_free_limit_ops
                ),
                p.of_load_free_limit,
                LIMIT_TARGET,
                percent,
            ));
        }
    }
    for c in latency {
        let met = c.overhead_p50 <= OVERHEAD_TARGET;
        out.push(Target {
            what: format!("RSA-{} overhead at 1 session, p50", c.bits),
            measured: percent(c.overhead_p50),
            target: format!("≤ {}", percent(OVERHEAD_TARGET)),
            met,
            distance: if met {
                String::new()
            } else {
                format!(
                    "{:.0} points (≈{:.0} µs per op) to cut",
                    (c.overhead_p50 - OVERHEAD_TARGET) * 100.0,
                    (c.overhead_p50 - OVERHEAD_TARGET) * c.e2e_p50_us
                )
            },
        });
    }
    // Public-key operations and the digest: the worst ratio over the session counts.
    let mut groups: Vec<(&'static str, Option<usize>)> = Vec::new();
    for r in results.iter().filter(|r| {
        matches!(r.op, "verify-pkcs" | "encrypt-oaep" | "digest-sha256")
            && r.throughput_ratio.is_some()
    }) {
        if !groups.contains(&(r.op, r.bits)) {
            groups.push((r.op, r.bits));
        }
    }
    for (op, bits) in groups {
        let worst = results
            .iter()
            .filter(|r| r.op == op && r.bits == bits)
            .filter_map(|r| r.throughput_ratio)
            .fold(f64::INFINITY, f64::min);
        let size = bits.map(|b| format!("RSA-{b} ")).unwrap_or_default();
        out.push(at_least(
            format!("{size}{op} vs SoftHSM (worst N)"),
            worst,
            PUBLIC_TARGET,
            ratio_x,
        ));
    }
    out
}

pub fn table(targets: &[Target], out: &mut String) {
    if targets.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nissue 7 targets (this run):");
    let _ = writeln!(
        out,
        "  {:<48} {:>10} {:>10} {:>5}  distance",
        "what", "measured", "target", "met"
    );
    for t in targets {
        let _ = writeln!(
            out,
            "  {:<48} {:>10} {:>10} {:>5}  {}",
            t.what,
            t.measured,
            t.target,
            if t.met { "yes" } else { "NO" },
            t.distance
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(ours: f64, openssl_all: f64, ours_all: f64) -> KernelRow {
        KernelRow {
            bits: 2048,
            exponent_bits: 2272,
            openssl_ops: 100.0,
            ours_ops: ours,
            ratio: ours / 100.0,
            repetitions: 1,
            threads: 2,
            openssl_all_cores_ops: openssl_all,
            ours_all_cores_ops: ours_all,
        }
    }

    #[test]
    fn limits_average_before_and_after_and_divide_by_parties() {
        let before = [kernel(400.0, 180.0, 600.0)];
        let after = [kernel(500.0, 240.0, 900.0)];
        let rows = limits(&before, &after, &[], 3);
        let l = &rows[0];
        assert_eq!(l.aggregate, 210.0);
        assert_eq!(l.limit_ops, 70.0);
        assert_eq!(l.own_kernel_limit_ops, 250.0);
        // 2 cores × mean(400, 500) ÷ 3.
        assert_eq!(l.load_free_limit_ops, 300.0);
        assert!(l.measured.is_empty());
        // Without an "after" measurement, the "before" one alone.
        let rows = limits(&before, &[], &[], 3);
        assert_eq!(rows[0].limit_ops, 60.0);
    }

    #[test]
    fn at_least_reports_the_factor_to_go() {
        let t = at_least("x".into(), 0.45, 0.9, ratio_x);
        assert!(!t.met);
        assert_eq!(t.distance, "×2.00 to go");
        let t = at_least("x".into(), 0.95, 0.9, ratio_x);
        assert!(t.met);
        assert!(t.distance.is_empty());
    }
}
