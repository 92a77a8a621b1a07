//! `keyfrag bench`: any PKCS#11 module loaded by path (as applications load it), measured
//! side by side with a second one in the same run: RSA sign (PKCS#1 v1.5, PSS), OAEP
//! decrypt, verify, OAEP encrypt and SHA-256 digest — throughput at several session counts
//! (one thread and one session each), latency p50/p99, key generation or import time — and a
//! memory mode that checks the process's resident size stays flat over many signatures,
//! a key-generation mode that times many C_GenerateKeyPair per size, a refresh mode
//! (`refresh.rs`) that times proactive refresh through the client, and generation through
//! the client, cells-only or in customer mode (`keygen_relay.rs`).
//!
//! Timing never goes into tests: only the statistics helpers are unit-tested.

pub mod aes;
pub mod args;
pub mod client_path;
pub mod kernel;
pub mod keygen;
pub mod keygen_relay;
pub mod module;
pub mod ops;
pub mod refresh;
pub mod report;
pub mod stats;
pub mod targets;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use args::{BenchArgs, main};
use module::{Key, Module};
use ops::{Fixtures, Op};
use report::{Document, KeyRow, Machine, Row, Settings};

/// Set by SIGINT: the runners stop, and the run ends normally (dev cluster stopped).
pub static STOP: AtomicBool = AtomicBool::new(false);

/// The PIN, label and path of a module to measure.
#[derive(Clone, Debug)]
pub struct ModuleSpec {
    pub path: PathBuf,
    pub pin: String,
    pub token_label: Option<String>,
}

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub module: ModuleSpec,
    pub compare: Option<ModuleSpec>,
    pub bits: Vec<usize>,
    pub sessions: Vec<usize>,
    pub seconds: f64,
    pub warmup: f64,
    pub ops: Vec<Op>,
    pub json: Option<PathBuf>,
    pub dev_cluster: bool,
    /// Memory mode: this many signatures at `memory_sessions` sessions, RSS before/after.
    pub memory: Option<u64>,
    pub memory_sessions: usize,
    /// Key-generation mode: generations per size (one count, or one per `bits` entry).
    pub keygen: Option<Vec<usize>>,
    /// Refresh mode: token keys per size (no module involved).
    pub refresh: Option<usize>,
    pub refresh_parallel: usize,
    /// Kernel mode: only the partial kernel against OpenSSL (no module).
    pub kernel_only: bool,
    /// Latency-probe mode: only the client-path probe (no module).
    pub client_path_only: bool,
    /// AES mode (`aes.rs`).
    pub aes: bool,
}

/// Parse a comma-separated list (`2048,3072`).
pub fn parse_list<T: std::str::FromStr>(s: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().map_err(|_| format!("bad list item {x:?}")))
        .collect()
}

pub fn parse_ops(s: &str) -> Result<Vec<Op>, String> {
    if s == "all" {
        return Ok(ops::ALL_OPS.to_vec());
    }
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            Op::from_id(x).ok_or_else(|| {
                let ids: Vec<_> = ops::ALL_OPS.iter().map(|o| o.id()).collect();
                format!("unknown operation {x:?} (one of: all, {})", ids.join(", "))
            })
        })
        .collect()
}

/// Ctrl-C stops the runners (the run then ends normally: partial results, cluster stopped).
/// A thread with a small runtime waits for SIGINT; installing it also keeps the default
/// action (exit) from killing the process before the cluster is stopped.
fn install_sigint() {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: no Ctrl-C handler: {e}");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("bench-sigint".into())
        .spawn(move || {
            runtime.block_on(async {
                while tokio::signal::ctrl_c().await.is_ok() {
                    STOP.store(true, Ordering::Relaxed);
                    eprintln!("bench: interrupted; finishing the operations in flight");
                }
            })
        });
    if let Err(e) = spawned {
        eprintln!("bench: no Ctrl-C handler: {e}");
    }
}

/// Set in the environment of the child run that measures against a `--dev-cluster`.
const DEV_CHILD_ENV: &str = "KEYFRAG_BENCH_DEV_CLUSTER";

/// A dev cluster in a temporary directory, stopped and removed on drop.
pub(crate) struct DevCluster {
    dir: tempfile::TempDir,
    pub(crate) config: PathBuf,
}

impl DevCluster {
    fn start(pin: &str) -> Result<DevCluster, String> {
        DevCluster::start_with(pin, false)
    }

    /// With `customer_fragment`, the token gets one (sealed under `pin`) and its card is
    /// pinned: generation on it is in customer mode.
    fn start_with(pin: &str, customer_fragment: bool) -> Result<DevCluster, String> {
        let dir = tempfile::Builder::new()
            .prefix("keyfrag-bench-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let canonical = dir.path().canonicalize().map_err(|e| e.to_string())?;
        let mut cluster = DevCluster {
            dir,
            config: PathBuf::new(),
        };
        cluster.config = crate::dev::up(&crate::dev::DevOptions {
            dir: canonical,
            cells: 3,
            label: "keyfrag-dev".into(),
            user_pin: pin.into(),
            so_pin: "12345678".into(),
            customer_fragment,
        })?;
        eprintln!(
            "bench: dev cluster up, KEYFRAG_CONF={}",
            cluster.config.display()
        );
        Ok(cluster)
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        if let Err(e) = crate::dev::down(self.dir.path()) {
            eprintln!("bench: stopping the dev cluster: {e}");
        }
    }
}

/// The arguments that make a child `keyfrag bench` do what `opts` asks, against the dev
/// cluster the parent started (no `--dev-cluster`).
fn child_args(opts: &BenchOptions) -> Vec<std::ffi::OsString> {
    let list = |v: &[usize]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut a: Vec<std::ffi::OsString> = vec!["bench".into()];
    // `--client-path` loads no module and has no path to pass on.
    if !opts.module.path.as_os_str().is_empty() {
        a.extend(["--module".into(), opts.module.path.clone().into()]);
    }
    a.extend(["--pin".into(), opts.module.pin.clone().into()]);
    a.extend([
        "--token-label".into(),
        opts.module
            .token_label
            .clone()
            .unwrap_or_else(|| "keyfrag-dev".into())
            .into(),
    ]);
    a.extend(["--bits".into(), list(&opts.bits).into()]);
    a.extend(["--sessions".into(), list(&opts.sessions).into()]);
    a.extend(["--seconds".into(), opts.seconds.to_string().into()]);
    a.extend(["--warmup".into(), opts.warmup.to_string().into()]);
    let ops: Vec<&str> = opts.ops.iter().map(|o| o.id()).collect();
    a.extend(["--ops".into(), ops.join(",").into()]);
    if let Some(j) = &opts.json {
        a.push("--json".into());
        a.push(j.clone().into());
    }
    if let Some(c) = &opts.compare {
        a.push("--compare".into());
        a.push(c.path.clone().into());
        a.extend(["--compare-pin".into(), c.pin.clone().into()]);
        if let Some(l) = &c.token_label {
            a.extend(["--compare-token-label".into(), l.clone().into()]);
        }
    }
    if let Some(n) = opts.memory {
        a.extend(["--memory".into(), n.to_string().into()]);
        a.extend([
            "--memory-sessions".into(),
            opts.memory_sessions.to_string().into(),
        ]);
    }
    if let Some(k) = &opts.keygen {
        a.extend(["--keygen".into(), list(k).into()]);
    }
    if opts.aes {
        a.push("--aes".into());
    }
    if opts.client_path_only {
        a.push("--client-path".into());
    }
    a
}

/// Start a dev cluster, run the benchmark in a child process whose `KEYFRAG_CONF` points
/// at it (the module reads its configuration from the environment at C_Initialize), stop
/// the cluster.
fn run_on_dev_cluster(opts: &BenchOptions) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
    let cluster = DevCluster::start(&opts.module.pin)?;
    if opts.aes {
        aes::add_cached_token(&cluster.config)?;
    }
    install_sigint();
    let status = std::process::Command::new(&exe)
        .args(child_args(opts))
        .env("KEYFRAG_CONF", &cluster.config)
        .env(DEV_CHILD_ENV, "1")
        .status()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()));
    drop(cluster);
    match status? {
        s if s.success() => Ok(()),
        s => Err(format!("benchmark run failed ({s})")),
    }
}

fn progress(module: &str, op: Op, bits: Option<usize>, m: &ops::Measurement) {
    let size = bits.map(|b| format!("RSA-{b} ")).unwrap_or_default();
    let lat = m
        .latency
        .as_ref()
        .map(|l| format!(" p50 {:.1}µs p99 {:.1}µs", l.p50_us, l.p99_us))
        .unwrap_or_default();
    let err = if m.errors > 0 {
        format!(
            " ({} errors: {})",
            m.errors,
            m.first_error.as_deref().unwrap_or("")
        )
    } else {
        String::new()
    };
    eprintln!(
        "bench: {module:<10} {size}{:<30} {:>3} sessions {:>10.1} ops/s{lat}{err}",
        op.mechanism(),
        m.sessions,
        m.ops_per_sec
    );
}

/// Keys (one per size) and their checked inputs, for one module.
struct Prepared {
    keys: Vec<(Key, Fixtures)>,
}

fn prepare(
    module: &Module,
    bits: &[usize],
    imports: &[rsa::PrivateKey],
    rows: &mut Vec<KeyRow>,
) -> Result<Prepared, String> {
    let mut keys = Vec::new();
    for (&b, import) in bits.iter().zip(imports) {
        let key = module::make_key(module, b, import)?;
        eprintln!(
            "bench: {} RSA-{b} key {} in {:.1} ms",
            module.info.name, key.origin.how, key.origin.ms
        );
        rows.push(KeyRow {
            module: module.info.name.clone(),
            bits: b,
            origin: key.origin.clone(),
        });
        let fx = Fixtures::for_key(module, &key)?;
        keys.push((key, fx));
    }
    Ok(Prepared { keys })
}

fn measure(
    module: &Module,
    op: Op,
    key: Option<&Key>,
    fx: &Fixtures,
    sessions: usize,
    opts: &BenchOptions,
) -> Result<ops::Measurement, String> {
    let m = ops::throughput(
        module,
        op,
        key,
        fx,
        sessions,
        Duration::from_secs_f64(opts.warmup),
        Duration::from_secs_f64(opts.seconds),
    )?;
    progress(&module.info.name, op, key.map(|k| k.bits), &m);
    Ok(m)
}

pub fn run(opts: &BenchOptions) -> Result<(), String> {
    if opts.bits.is_empty() || opts.sessions.is_empty() || opts.sessions.contains(&0) {
        return Err("--bits and --sessions need at least one value, sessions ≥ 1".into());
    }
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if !positive(opts.seconds) || !(positive(opts.warmup) || opts.warmup == 0.0) {
        return Err("--seconds must be > 0 and --warmup ≥ 0".into());
    }
    if let Some(k) = &opts.keygen {
        keygen::counts(k, &opts.bits)?;
        if opts.memory.is_some() {
            return Err("--keygen and --memory are separate runs".into());
        }
    }
    if opts.kernel_only {
        return kernel_only(opts);
    }
    if let Some(keys) = opts.refresh {
        if opts.keygen.is_some() || opts.memory.is_some() || opts.compare.is_some() {
            return Err("--refresh is a run of its own (no --keygen, --memory, --compare)".into());
        }
        // No module reads the configuration: the dev cluster, if any, runs in this process.
        return refresh::run(opts, keys);
    }
    if opts.dev_cluster {
        return run_on_dev_cluster(opts);
    }
    if opts.client_path_only {
        install_sigint();
        return client_path_only(opts);
    }
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut machine = Machine::probe();
    install_sigint();
    let dev_cluster = std::env::var_os(DEV_CHILD_ENV).is_some();
    if opts.aes {
        return aes::run(opts);
    }
    run_with(opts, &mut machine, started_unix, dev_cluster)
}

fn run_with(
    opts: &BenchOptions,
    machine: &mut Machine,
    started_unix: u64,
    dev_cluster: bool,
) -> Result<(), String> {
    let ours = Module::open(
        &opts.module.path,
        &opts.module.pin,
        opts.module.token_label.as_deref(),
    )?;
    let theirs = match &opts.compare {
        Some(c) => Some(Module::open(&c.path, &c.pin, c.token_label.as_deref())?),
        None => None,
    };
    if let Some(t) = &theirs
        && t.info.name == ours.info.name
    {
        // Keep the two apart in the table.
        eprintln!("bench: both modules are called {:?}", t.info.name);
    }

    // In memory mode only the first size is used, for signatures; the key-generation mode
    // needs no prepared keys.
    let bits: Vec<usize> = if opts.keygen.is_some() {
        Vec::new()
    } else if opts.memory.is_some() {
        opts.bits[..1].to_vec()
    } else if opts.ops.iter().any(|o| o.keyed()) {
        opts.bits.clone()
    } else {
        Vec::new()
    };
    let mut imports = Vec::new();
    for &b in &bits {
        eprintln!("bench: generating an RSA-{b} key with the rsa crate (for import)");
        imports.push(
            rsa::PrivateKey::new(&mut getrandom::SysRng, b)
                .map_err(|e| format!("RSA-{b} key generation: {e}"))?,
        );
    }
    let mut key_rows = Vec::new();
    let our_keys = prepare(&ours, &bits, &imports, &mut key_rows)?;
    let their_keys = match &theirs {
        Some(t) => Some(prepare(t, &bits, &imports, &mut key_rows)?),
        None => None,
    };

    let mut results = Vec::new();
    let mut memory = Vec::new();
    let mut keygen_rows = Vec::new();
    let mut kernel_rows = Vec::new();
    let mut kernel_after = Vec::new();
    let mut client_rows = Vec::new();
    let mut parties = None;
    if let Some(k) = &opts.keygen {
        let counts = keygen::counts(k, &opts.bits)?;
        let mut modules = vec![&ours];
        modules.extend(theirs.as_ref());
        keygen_rows = keygen::run(&modules, &opts.bits, &counts)?;
    } else if let Some(total) = opts.memory {
        for (module, prepared) in
            std::iter::once((&ours, &our_keys)).chain(theirs.as_ref().zip(their_keys.as_ref()))
        {
            let (key, fx) = &prepared.keys[0];
            if let Some(why) = fx.unavailable(Op::SignPkcs) {
                return Err(format!("{}: cannot sign: {why}", module.info.name));
            }
            eprintln!(
                "bench: memory: {} × {} at {} sessions on {}",
                total,
                Op::SignPkcs.mechanism(),
                opts.memory_sessions,
                module.info.name
            );
            memory.push(ops::memory(module, key, fx, total, opts.memory_sessions)?);
        }
    } else {
        // Interleaved: each point on ours, then at once on theirs, so both see the same
        // background load.
        for (i, &b) in bits.iter().enumerate() {
            // The kernel and the physical limit, next to the points they are compared with.
            if opts.ops.iter().any(|o| o.private()) && !STOP.load(Ordering::Relaxed) {
                kernel_rows.push(kernel::measure(
                    b,
                    KERNEL_REPS,
                    KERNEL_BUDGET,
                    KERNEL_WINDOW,
                )?);
            }
            for &op in opts.ops.iter().filter(|o| o.keyed()) {
                let (ok, ofx) = &our_keys.keys[i];
                let theirs_i = theirs
                    .as_ref()
                    .zip(their_keys.as_ref())
                    .map(|(t, tk)| (t, &tk.keys[i].0, &tk.keys[i].1));
                let mut notes = Vec::new();
                let mut sides = vec![(&ours, ok, ofx)];
                sides.extend(theirs_i);
                for (m, _, fx) in &sides {
                    if let Some(why) = fx.unavailable(op) {
                        notes.push(format!("{}: not measured: {why}", m.info.name));
                    }
                    if let Some(n) = fx.note(op) {
                        notes.push(format!("{}: {n}", m.info.name));
                    }
                }
                for &s in &opts.sessions {
                    if STOP.load(Ordering::Relaxed) {
                        break;
                    }
                    let mut got = Vec::new();
                    for (m, k, fx) in &sides {
                        got.push(match fx.unavailable(op) {
                            Some(_) => None,
                            None => Some(measure(m, op, Some(k), fx, s, opts)?),
                        });
                    }
                    let theirs_m = if theirs.is_some() {
                        got.pop().flatten()
                    } else {
                        None
                    };
                    let ours_m = got.pop().flatten();
                    results.push(Row::new(op, Some(b), s, ours_m, theirs_m, notes.clone()));
                }
            }
        }
        if opts.ops.contains(&Op::Digest) && opts.keygen.is_none() {
            let fx = Fixtures::digest_only();
            ops::check_digest(&ours, &fx)?;
            if let Some(t) = &theirs {
                ops::check_digest(t, &fx)?;
            }
            for &s in &opts.sessions {
                if STOP.load(Ordering::Relaxed) {
                    break;
                }
                let m_ours = measure(&ours, Op::Digest, None, &fx, s, opts)?;
                let m_theirs = match &theirs {
                    Some(t) => Some(measure(t, Op::Digest, None, &fx, s, opts)?),
                    None => None,
                };
                results.push(Row::new(
                    Op::Digest,
                    None,
                    s,
                    Some(m_ours),
                    m_theirs,
                    Vec::new(),
                ));
            }
        }
        if opts.ops.contains(&Op::SignPkcs) && is_keyfrag(&ours) {
            match probe_client_path(opts, &bits, &imports) {
                Ok((rows, n)) => {
                    client_rows = rows;
                    parties = Some(n);
                }
                Err(e) => eprintln!("bench: client-path latency not measured: {e}"),
            }
        }
        let sizes: Vec<usize> = kernel_rows.iter().map(|k| k.bits).collect();
        for b in sizes {
            if STOP.load(Ordering::Relaxed) {
                break;
            }
            kernel_after.push(kernel::measure(
                b,
                KERNEL_REPS,
                KERNEL_BUDGET,
                KERNEL_WINDOW,
            )?);
        }
    }
    drop(imports);
    // Without a keyfrag cluster to ask, the parties are the dev cluster's three cells.
    let parties = parties.unwrap_or(DEV_CELLS);
    let physical_limit = targets::limits(&kernel_rows, &kernel_after, &results, parties);
    let issue7_targets = targets::judge(&kernel_rows, &physical_limit, &client_rows, &results);
    machine.loadavg_end = report::loadavg();

    let doc = Document {
        tool: "keyfrag bench",
        version: env!("CARGO_PKG_VERSION"),
        started_unix,
        machine: machine.clone(),
        settings: Settings {
            bits: if opts.keygen.is_some() {
                opts.bits.clone()
            } else {
                bits.clone()
            },
            sessions: opts.sessions.clone(),
            seconds: opts.seconds,
            warmup_seconds: opts.warmup,
            ops: opts.ops.iter().map(|o| o.id()).collect(),
            dev_cluster,
            memory_ops: opts.memory,
            keygen: opts
                .keygen
                .as_ref()
                .and_then(|k| keygen::counts(k, &opts.bits).ok()),
        },
        ours: ours.info.clone(),
        theirs: theirs.as_ref().map(|t| t.info.clone()),
        keys: key_rows,
        results,
        memory,
        keygen_ratios: theirs
            .as_ref()
            .map(|t| keygen::ratios(&keygen_rows, &ours.info.name, &t.info.name))
            .unwrap_or_default(),
        keygen: keygen_rows,
        kernel: kernel_rows,
        kernel_after,
        physical_limit,
        client_path: client_rows,
        issue7_targets,
    };
    for (module, prepared) in
        std::iter::once((&ours, &our_keys)).chain(theirs.as_ref().zip(their_keys.as_ref()))
    {
        for (k, _) in &prepared.keys {
            module::destroy_key(module, k);
        }
    }
    ours.close();
    if let Some(t) = theirs {
        t.close();
    }
    print!("{}", report::table(&doc));
    if let Some(path) = &opts.json {
        write_json(path, &doc)?;
        eprintln!("bench: wrote {}", path.display());
    }
    if STOP.load(Ordering::Relaxed) {
        return Err("interrupted (partial results above)".into());
    }
    Ok(())
}

/// Kernel measurement: interleaved single-thread repetitions, time per repetition and side,
/// and the window on every core.
const KERNEL_REPS: usize = 5;
const KERNEL_BUDGET: Duration = Duration::from_millis(300);
const KERNEL_WINDOW: Duration = Duration::from_secs(2);

/// Cells of a `--dev-cluster`.
const DEV_CELLS: usize = 3;

fn is_keyfrag(m: &Module) -> bool {
    m.info.manufacturer.to_ascii_lowercase().contains("keyfrag")
}

/// The 1-session client-path probe for every size, on the cluster the module uses
/// (`KEYFRAG_CONF`), and the number of parties computing a partial there.
fn probe_client_path(
    opts: &BenchOptions,
    bits: &[usize],
    imports: &[rsa::PrivateKey],
) -> Result<(Vec<client_path::ClientPathRow>, usize), String> {
    let label = opts
        .module
        .token_label
        .clone()
        .unwrap_or_else(|| "keyfrag-dev".into());
    let cluster = crate::keys::token_cluster(None, Some(&label))?;
    let parties = cluster.cell_count() + usize::from(cluster.config().customer_fragment.is_some());
    let mut rows = Vec::new();
    for (&b, key) in bits.iter().zip(imports) {
        if STOP.load(Ordering::Relaxed) {
            break;
        }
        let row = client_path::measure(
            &cluster,
            &opts.module.pin,
            key,
            Duration::from_secs_f64(opts.seconds),
        )?;
        eprintln!(
            "bench: client path RSA-{b}: {} ops, e2e p50 {:.0} µs, slowest cell handled p50 \
             {:.0} µs (compute {:.0} µs), overhead p50 {:.1} % (compute only: {:.1} %)",
            row.samples,
            row.e2e_p50_us,
            row.slowest_handled_p50_us,
            row.slowest_compute_p50_us,
            row.overhead_p50 * 100.0,
            row.overhead_compute_p50 * 100.0
        );
        rows.push(row);
    }
    Ok((rows, parties))
}

/// `--client-path`: the latency probe alone, on keys made here (no module is loaded; the
/// cluster is `KEYFRAG_CONF`'s). Prints one line per size; `--json` gets the rows.
fn client_path_only(opts: &BenchOptions) -> Result<(), String> {
    let mut imports = Vec::new();
    for &b in &opts.bits {
        imports.push(
            rsa::PrivateKey::new(&mut getrandom::SysRng, b)
                .map_err(|e| format!("RSA-{b} key generation: {e}"))?,
        );
    }
    let (rows, _) = probe_client_path(opts, &opts.bits, &imports)?;
    for r in &rows {
        println!(
            "client-path RSA-{} samples {} e2e_p50 {:.0} handled_p50 {:.0} compute_p50 {:.0} \
             overhead_p50 {:.2} % overhead_p50_us {:.0} before {:.0} round_trip {:.0} \
             combine {:.0} wire {:.0} bare {:.0}",
            r.bits,
            r.samples,
            r.e2e_p50_us,
            r.slowest_handled_p50_us,
            r.slowest_compute_p50_us,
            r.overhead_p50 * 100.0,
            r.overhead_p50_us,
            r.before_p50_us,
            r.round_trip_p50_us,
            r.combine_p50_us,
            r.wire_p50_us,
            r.bare_round_trip_p50_us
        );
    }
    if let Some(path) = &opts.json {
        let mut text = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
        text.push('\n');
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// `--kernel`: the kernel against OpenSSL only, per `--bits` size (no module, no cluster).
fn kernel_only(opts: &BenchOptions) -> Result<(), String> {
    let mut machine = Machine::probe();
    install_sigint();
    let mut rows = Vec::new();
    for &b in &opts.bits {
        rows.push(kernel::measure(
            b,
            KERNEL_REPS,
            KERNEL_BUDGET,
            KERNEL_WINDOW,
        )?);
    }
    machine.loadavg_end = report::loadavg();
    let targets = targets::judge(&rows, &[], &[], &[]);
    let mut out = format!(
        "keyfrag bench --kernel — {} × {} (load {:?} → {:?})\n",
        machine.nproc, machine.cpu_model, machine.loadavg_start, machine.loadavg_end
    );
    report::kernel_only_table(&rows, &mut out);
    targets::table(&targets, &mut out);
    print!("{out}");
    if let Some(path) = &opts.json {
        #[derive(serde::Serialize)]
        struct KernelDocument<'a> {
            machine: &'a Machine,
            kernel: &'a [kernel::KernelRow],
            issue7_targets: &'a [targets::Target],
        }
        let doc = KernelDocument {
            machine: &machine,
            kernel: &rows,
            issue7_targets: &targets,
        };
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn write_json(path: &Path, doc: &Document) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut text = serde_json::to_string_pretty(doc).map_err(|e| e.to_string())?;
    text.push('\n');
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ops_parse() {
        assert_eq!(parse_list::<usize>("2048, 3072").unwrap(), vec![2048, 3072]);
        assert!(parse_list::<usize>("1,x").is_err());
        assert_eq!(parse_ops("all").unwrap().len(), ops::ALL_OPS.len());
        assert_eq!(
            parse_ops("sign-pss,digest-sha256").unwrap(),
            vec![Op::SignPss, Op::Digest]
        );
        assert!(parse_ops("sign").is_err());
    }
}
