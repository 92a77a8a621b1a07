//! The JSON document and the table for people.

use std::fmt::Write as _;

use serde::Serialize;

use super::client_path::ClientPathRow;
use super::kernel::KernelRow;
use super::keygen::{KeygenRatio, KeygenRow};
use super::module::{KeyOrigin, ModuleInfo};
use super::ops::{Measurement, MemoryReport};
use super::stats;
use super::targets::{LimitRow, Target};

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    /// /proc/loadavg (1, 5, 15 min) when the run started and when it ended.
    pub loadavg_start: Vec<f64>,
    pub loadavg_end: Vec<f64>,
}

impl Machine {
    pub fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        Machine {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu_model,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            loadavg_start: loadavg(),
            loadavg_end: Vec::new(),
        }
    }
}

pub fn loadavg() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub bits: Vec<usize>,
    pub sessions: Vec<usize>,
    pub seconds: f64,
    pub warmup_seconds: f64,
    pub ops: Vec<&'static str>,
    pub dev_cluster: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_ops: Option<u64>,
    /// Key-generation mode: generations per size, in `bits` order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keygen: Option<Vec<usize>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct KeyRow {
    pub module: String,
    pub bits: usize,
    #[serde(flatten)]
    pub origin: KeyOrigin,
}

/// One operation at one size and session count, on both modules.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub op: &'static str,
    pub mechanism: &'static str,
    /// Key size; absent for the digest.
    pub bits: Option<usize>,
    pub sessions: usize,
    /// Absent when the operation failed its correctness check on this module (see notes).
    pub ours: Option<Measurement>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theirs: Option<Measurement>,
    /// ops/s ours ÷ ops/s theirs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput_ratio: Option<f64>,
    /// p50 latency ours ÷ p50 latency theirs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_ratio: Option<f64>,
    /// Why a side was not measured, or how its method differs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Row {
    pub fn new(
        op: super::ops::Op,
        bits: Option<usize>,
        sessions: usize,
        ours: Option<Measurement>,
        theirs: Option<Measurement>,
        notes: Vec<String>,
    ) -> Row {
        let p50 = |m: &Measurement| m.latency.as_ref().map(|l| l.p50_us);
        let ok = |m: &Measurement| m.ops > 0;
        let throughput_ratio = stats::ratio(
            ours.as_ref().filter(|m| ok(m)).map(|m| m.ops_per_sec),
            theirs.as_ref().filter(|m| ok(m)).map(|t| t.ops_per_sec),
        );
        let p50_ratio = stats::ratio(ours.as_ref().and_then(p50), theirs.as_ref().and_then(p50));
        Row {
            op: op.id(),
            mechanism: op.mechanism(),
            bits,
            sessions,
            ours,
            theirs,
            throughput_ratio,
            p50_ratio,
            notes,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Document {
    pub tool: &'static str,
    pub version: &'static str,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
    pub machine: Machine,
    pub settings: Settings,
    pub ours: ModuleInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theirs: Option<ModuleInfo>,
    pub keys: Vec<KeyRow>,
    pub results: Vec<Row>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub memory: Vec<MemoryReport>,
    /// Key-generation mode: one row per module and size.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keygen: Vec<KeygenRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keygen_ratios: Vec<KeygenRatio>,
    /// The partial kernel against OpenSSL's constant-time modexp, per size, measured before
    /// the size's throughput points, and again after the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kernel: Vec<KernelRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kernel_after: Vec<KernelRow>,
    /// The physical limit of private operations and keyfrag's share of it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub physical_limit: Vec<LimitRow>,
    /// The module's private-key path through keyfrag's client at 1 session, with the cells'
    /// own compute times (the latency-overhead target).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_path: Vec<ClientPathRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub issue7_targets: Vec<Target>,
}

fn ops_s(x: f64) -> String {
    if x >= 1000.0 {
        format!("{x:.0}")
    } else if x >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn lat(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{us:.1}µs")
    }
}

fn ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 10.0 => format!("{r:.1}x"),
        Some(r) => format!("{r:.3}x"),
        None => "-".into(),
    }
}

fn measured(m: &Measurement) -> String {
    if m.errors > 0 && m.ops == 0 {
        "ERR".into()
    } else {
        ops_s(m.ops_per_sec)
    }
}

/// The table: per key size, per operation, one line per module and a ratio line.
pub fn table(doc: &Document) -> String {
    let mut out = String::new();
    let m = &doc.machine;
    let method = match &doc.settings.keygen {
        Some(k) => format!("key generation, {k:?} per size {:?}", doc.settings.bits),
        None => format!(
            "{} s per point after {} s warm-up",
            doc.settings.seconds, doc.settings.warmup_seconds
        ),
    };
    let _ = writeln!(
        out,
        "keyfrag bench — {} × {} (load {:?} → {:?}); {method}",
        m.nproc, m.cpu_model, m.loadavg_start, m.loadavg_end,
    );
    let _ = writeln!(
        out,
        "ours:   {} ({} {}, token {:?}) {}",
        doc.ours.name,
        doc.ours.manufacturer,
        doc.ours.library_version,
        doc.ours.token_label,
        doc.ours.path.display()
    );
    if let Some(t) = &doc.theirs {
        let _ = writeln!(
            out,
            "theirs: {} ({} {}, token {:?}) {}",
            t.name,
            t.manufacturer,
            t.library_version,
            t.token_label,
            t.path.display()
        );
    }
    if !doc.keys.is_empty() {
        let _ = writeln!(out, "\nkeys:");
        for k in &doc.keys {
            let why = k
                .origin
                .generate_error
                .as_deref()
                .map(|e| format!("  ({e})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<10} RSA-{}  {} in {:.1} ms{}",
                k.module, k.bits, k.origin.how, k.origin.ms, why
            );
        }
    }
    let sessions = &doc.settings.sessions;
    let lat_at = sessions.iter().copied().min().unwrap_or(1);
    let mut groups: Vec<Option<usize>> = Vec::new();
    for r in &doc.results {
        if !groups.contains(&r.bits) {
            groups.push(r.bits);
        }
    }
    for bits in groups {
        let title = match bits {
            Some(b) => format!("RSA-{b}"),
            None => "no key".into(),
        };
        let _ = writeln!(
            out,
            "\n{title}: ops/s at N concurrent sessions; latency at {lat_at} session{}",
            if lat_at == 1 { "" } else { "s" }
        );
        let mut head = format!("{:<30} {:<10}", "operation", "module");
        for s in sessions {
            let _ = write!(head, " {:>10}", format!("{s}"));
        }
        let _ = write!(head, " {:>10} {:>10}", "p50", "p99");
        let _ = writeln!(out, "{head}");
        let mut mechs: Vec<&'static str> = Vec::new();
        for r in doc.results.iter().filter(|r| r.bits == bits) {
            if !mechs.contains(&r.mechanism) {
                mechs.push(r.mechanism);
            }
        }
        for mech in mechs {
            let rows: Vec<&Row> = doc
                .results
                .iter()
                .filter(|r| r.bits == bits && r.mechanism == mech)
                .collect();
            let find = |s: usize| rows.iter().find(|r| r.sessions == s);
            let lat_row = find(lat_at);
            let mut lines: Vec<String> = Vec::new();
            let side = |name: &str, get: &dyn Fn(&Row) -> Option<Measurement>| {
                let mut l = format!("{:<10}", name);
                for &s in sessions {
                    let v = find(s).and_then(|r| get(r)).map(|m| measured(&m));
                    let _ = write!(l, " {:>10}", v.unwrap_or_else(|| "-".into()));
                }
                let lt = lat_row.and_then(|r| get(r)).and_then(|m| m.latency);
                let (p50, p99) = lt
                    .map(|l| (lat(l.p50_us), lat(l.p99_us)))
                    .unwrap_or(("-".into(), "-".into()));
                let _ = write!(l, " {p50:>10} {p99:>10}");
                l
            };
            lines.push(side(&doc.ours.name, &|r: &Row| r.ours.clone()));
            if let Some(t) = &doc.theirs {
                lines.push(side(&t.name, &|r: &Row| r.theirs.clone()));
                let mut l = format!("{:<10}", "ours/them");
                for &s in sessions {
                    let _ = write!(
                        l,
                        " {:>10}",
                        ratio(find(s).and_then(|r| r.throughput_ratio))
                    );
                }
                let _ = write!(
                    l,
                    " {:>10} {:>10}",
                    ratio(lat_row.and_then(|r| r.p50_ratio)),
                    ""
                );
                lines.push(l);
            }
            for (i, l) in lines.iter().enumerate() {
                let label = if i == 0 { mech } else { "" };
                let _ = writeln!(out, "{label:<30} {}", l.trim_end());
            }
            let mut notes: Vec<&String> = Vec::new();
            for r in &rows {
                for n in &r.notes {
                    if !notes.contains(&n) {
                        notes.push(n);
                    }
                }
            }
            for n in notes {
                let _ = writeln!(out, "{:<30} note: {n}", "");
            }
            for r in &rows {
                let their_name = doc.theirs.as_ref().map(|t| t.name.as_str()).unwrap_or("");
                for (who, m) in [
                    (doc.ours.name.as_str(), r.ours.as_ref()),
                    (their_name, r.theirs.as_ref()),
                ]
                .into_iter()
                .filter_map(|(w, m)| m.map(|m| (w, m)))
                {
                    if let Some(e) = &m.first_error {
                        let _ = writeln!(
                            out,
                            "{:<30} ! {who} at {} sessions: {} errors, first: {e}",
                            "", r.sessions, m.errors
                        );
                    }
                }
            }
        }
    }
    if !doc.keygen.is_empty() {
        super::keygen::table(&doc.keygen, &doc.keygen_ratios, &mut out);
    }
    kernel_table(doc, &mut out);
    client_path_table(doc, &mut out);
    super::targets::table(&doc.issue7_targets, &mut out);
    for mem in &doc.memory {
        let _ = writeln!(
            out,
            "\nmemory: {} — {} RSA-{} × {} ops at {} sessions ({:.0} s)",
            mem.module,
            mem.op,
            mem.bits,
            mem.points.last().map(|p| p.ops).unwrap_or(0),
            mem.sessions,
            mem.seconds
        );
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let _ = writeln!(
            out,
            "  RSS before {:.1} MiB, after {}-op warm-up {:.1} MiB",
            mib(mem.rss_before_bytes),
            mem.warmup_ops,
            mib(mem.rss_after_warmup_bytes)
        );
        if let Some(f) = mem.open_fds_before {
            let _ = writeln!(out, "  open descriptors before: {f}");
        }
        for p in &mem.points {
            let fds = p
                .open_fds
                .map(|f| format!(", {f} open descriptors"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  after {:>8} ops: {:.1} MiB{fds}",
                p.ops,
                mib(p.rss_bytes)
            );
        }
        let _ = writeln!(
            out,
            "  growth after warm-up: {:+.1} KiB ({:+.2} bytes/op); after the first quarter: {:+.1} KiB{}",
            mem.growth_bytes as f64 / 1024.0,
            mem.growth_bytes_per_op,
            mem.growth_after_first_quarter_bytes as f64 / 1024.0,
            if mem.errors > 0 {
                format!(
                    "; {} errors, first: {}",
                    mem.errors,
                    mem.first_error.as_deref().unwrap_or("")
                )
            } else {
                String::new()
            }
        );
        let verdict = match (mem.flat, mem.growth_second_half_bytes) {
            (Some(flat), Some(g)) => format!(
                "{}: growth over the second half {:+.1} KiB (flat means ≤ {:.0} KiB and no errors)",
                if flat { "PASS" } else { "FAIL" },
                g as f64 / 1024.0,
                mem.flat_bound_bytes as f64 / 1024.0
            ),
            _ => "no verdict (the run stopped early)".into(),
        };
        let _ = writeln!(out, "  {verdict}");
    }
    out
}

/// `--kernel`: the kernel rows alone.
pub fn kernel_only_table(rows: &[KernelRow], out: &mut String) {
    kernel_rows_table(rows, &[], out);
}

fn kernel_table(doc: &Document, out: &mut String) {
    if doc.kernel.is_empty() {
        return;
    }
    kernel_rows_table(&doc.kernel, &doc.kernel_after, out);
    limit_table(&doc.physical_limit, out);
}

fn kernel_rows_table(before: &[KernelRow], after: &[KernelRow], out: &mut String) {
    let _ = writeln!(
        out,
        "\nkernel: partial exponentiation (rsa_partial, x^(2d_i) mod N) vs OpenSSL's constant-time \
         modexp, same widths; ops/s"
    );
    let _ = writeln!(
        out,
        "{:<10} {:>5} {:>8} {:>12} {:>12} {:>8} {:>8} {:>14} {:>14}",
        "size",
        "exp",
        "when",
        "openssl 1t",
        "ours 1t",
        "ratio",
        "threads",
        "openssl all",
        "ours all"
    );
    for (when, rows) in [("before", before), ("after", after)] {
        for k in rows {
            let _ = writeln!(
                out,
                "{:<10} {:>5} {:>8} {:>12.1} {:>12.1} {:>7.3}x {:>8} {:>14.1} {:>14.1}",
                format!("RSA-{}", k.bits),
                k.exponent_bits,
                when,
                k.openssl_ops,
                k.ours_ops,
                k.ratio,
                k.threads,
                k.openssl_all_cores_ops,
                k.ours_all_cores_ops
            );
        }
    }
}

fn limit_table(limits: &[LimitRow], out: &mut String) {
    for l in limits {
        let pts: Vec<String> = l
            .measured
            .iter()
            .map(|p| {
                format!(
                    "{} at {}: {} ops/s = {:.1} % of it ({:.1} % of {:.1}/s with our kernel on \
                     all cores, {:.1} % of {:.1}/s = {} × our kernel's 1-thread rate ÷ {})",
                    p.op,
                    p.sessions,
                    ops_s(p.ops_per_sec),
                    p.of_limit * 100.0,
                    p.of_own_kernel_limit * 100.0,
                    l.own_kernel_limit_ops,
                    p.of_load_free_limit * 100.0,
                    l.load_free_limit_ops,
                    l.threads,
                    l.parties
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "physical limit RSA-{}: {:.1} ops/s (OpenSSL on all cores {:.1}/s ÷ {} parties); {}",
            l.bits,
            l.limit_ops,
            l.aggregate,
            l.parties,
            pts.join("; ")
        );
    }
}

fn client_path_table(doc: &Document, out: &mut String) {
    if doc.client_path.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nlatency overhead at 1 session: the module's sign path through keyfrag's client \
         (hash, pad, blind, partials, combine, verify), per operation e2e − the slowest \
         cell's handled_us (its wall time on the request); beside it e2e − the slowest \
         compute_us"
    );
    for c in &doc.client_path {
        let module_p50 = doc
            .results
            .iter()
            .find(|r| r.op == "sign-pkcs" && r.bits == Some(c.bits) && r.sessions == 1)
            .and_then(|r| r.ours.as_ref())
            .and_then(|m| m.latency.as_ref())
            .map(|l| l.p50_us);
        let module = module_p50
            .map(|p| {
                format!(
                    "; module C_Sign p50 {} ({:+.0} µs over the client path)",
                    lat(p),
                    p - c.e2e_p50_us
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  RSA-{}: {} ops, e2e p50 {} p90 {}, slowest cell handled p50 {}; overhead p50 \
             {:.1} % ({}) p90 {:.1} %{module}",
            c.bits,
            c.samples,
            lat(c.e2e_p50_us),
            lat(c.e2e_p90_us),
            lat(c.slowest_handled_p50_us),
            c.overhead_p50 * 100.0,
            lat(c.overhead_p50_us),
            c.overhead_p90 * 100.0
        );
        let _ = writeln!(
            out,
            "    with compute_us alone subtracted (slowest compute p50 {}): overhead p50 {:.1} % \
             p90 {:.1} %; in the slowest cell but not computing p50 {}",
            lat(c.slowest_compute_p50_us),
            c.overhead_compute_p50 * 100.0,
            c.overhead_compute_p90 * 100.0,
            lat(c.in_cell_not_compute_p50_us)
        );
        let _ = writeln!(
            out,
            "    parts (p50): hash+pad+blind {}, fan-out round trip {} (of which outside the \
             slowest cell's handler: {}), combine+verify {}; a fan-out without compute {}",
            lat(c.before_p50_us),
            lat(c.round_trip_p50_us),
            lat(c.wire_p50_us),
            lat(c.combine_p50_us),
            lat(c.bare_round_trip_p50_us)
        );
        let _ = writeln!(
            out,
            "    {} cells on {} cores: summed compute ÷ cores p50 {}; overhead beyond that \
             contention floor p50 {:.1} % (not the issue's definition)",
            c.cells,
            c.cores,
            lat(c.compute_per_core_p50_us),
            c.overhead_beyond_contention_p50 * 100.0
        );
    }
}
