//! The cell's Prometheus metrics: counters and histograms kept in fixed tables of atomics (no
//! lock and no allocation per request), rendered in the text exposition format on a separate
//! listener (`metrics_http`). Key counts and epochs are read from the store at scrape time.
//!
//! Nothing here is secret: route templates (never the uid in a path), statuses, error codes,
//! token ids, key kinds and epochs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keyfrag_proto::ErrorCode;

pub use crate::store::KeyStat;

/// Every route template the cell serves to tokens, counted in atomics; a request on anything
/// else counts as "other". Operator routes (`/v1/admin/...`, rare) are counted by template in
/// a map under a mutex instead, so adding one needs no change here. The unit test below
/// checks this list against the `.route(` calls in the sources.
pub const ROUTES: &[&str] = &[
    "/healthz",
    "/readyz",
    "/v1/info",
    "/v1/token",
    "/v1/token/init",
    "/v1/login",
    "/v1/logout",
    "/v1/pin/init",
    "/v1/pin/set",
    "/v1/objects",
    "/v1/objects/stage",
    "/v1/objects/commit",
    "/v1/objects/abort",
    "/v1/objects/pending",
    "/v1/objects/status",
    "/v1/keys",
    "/v1/keys/lease",
    "/v1/keys/pool",
    "/v1/keys/{uid}",
    "/v1/keys/{uid}/rsa-partial",
    "/v1/keys/{uid}/claim",
    "/v1/keys/{uid}/prf-create",
    "/v1/keys/{uid}/prf-commitments",
    "/v1/keys/{uid}/prf-evaluate",
    "/v1/keys/{uid}/refresh/deal",
    "/v1/keys/{uid}/refresh/prepare",
    "/v1/keys/{uid}/refresh/check",
    "/v1/keys/{uid}/refresh/commit",
    "/v1/keys/{uid}/refresh/finalize",
    "/v1/keys/{uid}/refresh/abort",
    "/v1/keygen/start",
    "/v1/keygen/{session}/step",
    "/v1/keygen/{session}/commit",
    "/v1/keygen/{session}/abort",
];
const OTHER_ROUTE: usize = ROUTES.len();
const ADMIN_PREFIX: &str = "/v1/admin/";

/// Statuses counted on their own; anything else is "other".
const STATUSES: &[u16] = &[200, 400, 401, 403, 404, 409, 413, 429, 500, 503];
const OTHER_STATUS: usize = STATUSES.len();

/// The operations whose latency is a histogram, by route family.
const OPERATIONS: &[&str] = &[
    "partial",
    "prf_evaluate",
    "keygen_step",
    "refresh_step",
    "objects",
];

/// Upper bounds of the latency buckets, in seconds (a partial takes milliseconds; a keygen
/// step on a loaded cell can take seconds).
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every wire error code, in the order of the counters.
const CODES: &[ErrorCode] = &[
    ErrorCode::BadRequest,
    ErrorCode::Unauthorized,
    ErrorCode::NotFound,
    ErrorCode::Conflict,
    ErrorCode::TooLarge,
    ErrorCode::RateLimited,
    ErrorCode::TokenNotInitialized,
    ErrorCode::PinIncorrect,
    ErrorCode::PinLocked,
    ErrorCode::PinLenRange,
    ErrorCode::UserPinNotInitialized,
    ErrorCode::UserNotLoggedIn,
    ErrorCode::KeyNotFound,
    ErrorCode::EpochUnknown,
    ErrorCode::VersionUnsupported,
    ErrorCode::Internal,
    ErrorCode::RefreshPaused,
];

fn code_index(code: ErrorCode) -> usize {
    // Exhaustive on purpose: a new code fails to compile here until it is counted.
    match code {
        ErrorCode::BadRequest => 0,
        ErrorCode::Unauthorized => 1,
        ErrorCode::NotFound => 2,
        ErrorCode::Conflict => 3,
        ErrorCode::TooLarge => 4,
        ErrorCode::RateLimited => 5,
        ErrorCode::TokenNotInitialized => 6,
        ErrorCode::PinIncorrect => 7,
        ErrorCode::PinLocked => 8,
        ErrorCode::PinLenRange => 9,
        ErrorCode::UserPinNotInitialized => 10,
        ErrorCode::UserNotLoggedIn => 11,
        ErrorCode::KeyNotFound => 12,
        ErrorCode::EpochUnknown => 13,
        ErrorCode::VersionUnsupported => 14,
        ErrorCode::Internal => 15,
        ErrorCode::RefreshPaused => 16,
    }
}

fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

struct Histogram {
    /// Non-cumulative counts per bucket; the last one is +Inf.
    buckets: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: (0..=BUCKETS.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The request counters of one cell.
pub struct Metrics {
    /// `ROUTES.len() + 1` rows of `STATUSES.len() + 1` counters.
    requests: Vec<AtomicU64>,
    latency: Vec<Histogram>,
    errors: Vec<AtomicU64>,
    /// Token ids in config order, and their refusals by the rate limit (one more counter for
    /// tokens added later, by the operator).
    tokens: Vec<String>,
    rate_limited: Vec<AtomicU64>,
    /// Operator requests by (route template, status).
    admin: Mutex<BTreeMap<(String, u16), u64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new(tokens: Vec<String>) -> Self {
        let counters = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        Metrics {
            requests: counters((ROUTES.len() + 1) * (STATUSES.len() + 1)),
            latency: OPERATIONS.iter().map(|_| Histogram::new()).collect(),
            errors: counters(CODES.len()),
            rate_limited: counters(tokens.len() + 1),
            tokens,
            admin: Mutex::new(BTreeMap::new()),
        }
    }

    /// One request answered: its matched route template (None: no route matched), status
    /// and time taken.
    pub fn record_request(&self, route: Option<&str>, status: u16, elapsed: Duration) {
        if let Some(admin) = route.filter(|r| r.starts_with(ADMIN_PREFIX)) {
            let mut map = self.admin.lock().unwrap_or_else(|e| e.into_inner());
            *map.entry((admin.to_string(), status)).or_default() += 1;
            return;
        }
        let r = route
            .and_then(|p| ROUTES.iter().position(|&t| t == p))
            .unwrap_or(OTHER_ROUTE);
        let s = STATUSES
            .iter()
            .position(|&c| c == status)
            .unwrap_or(OTHER_STATUS);
        self.requests[r * (STATUSES.len() + 1) + s].fetch_add(1, Ordering::Relaxed);
        if let Some(op) = route.and_then(operation_of) {
            self.latency[op].observe(elapsed);
        }
    }

    pub fn record_error(&self, code: ErrorCode) {
        self.errors[code_index(code)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_rate_limited(&self, token: &str) {
        let i = self
            .tokens
            .iter()
            .position(|t| t == token)
            .unwrap_or(self.tokens.len());
        self.rate_limited[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition (format 0.0.4), with the key statistics per token read by the caller.
    pub fn render(&self, keys: &[KeyStat], refresh_paused: bool) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);

        header(
            &mut out,
            "keyfrag_requests_total",
            "counter",
            "Requests answered, by route template and HTTP status.",
        );
        for (r, route) in ROUTES.iter().chain(std::iter::once(&"other")).enumerate() {
            for s in 0..=STATUSES.len() {
                let n = load(&self.requests[r * (STATUSES.len() + 1) + s]);
                if n == 0 {
                    continue;
                }
                let status = STATUSES
                    .get(s)
                    .map_or_else(|| "other".to_string(), u16::to_string);
                let _ = writeln!(
                    out,
                    "keyfrag_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let admin = self.admin.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for ((route, status), n) in admin {
            let _ = writeln!(
                out,
                "keyfrag_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                escape(&route)
            );
        }

        header(
            &mut out,
            "keyfrag_operation_duration_seconds",
            "histogram",
            "Time to answer, by operation.",
        );
        for (op, h) in OPERATIONS.iter().zip(&self.latency) {
            let mut cumulative = 0;
            for (i, bucket) in h.buckets.iter().enumerate() {
                cumulative += load(bucket);
                let le = BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "keyfrag_operation_duration_seconds_bucket{{operation=\"{op}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let sum = load(&h.sum_micros) as f64 / 1e6;
            let _ = writeln!(
                out,
                "keyfrag_operation_duration_seconds_sum{{operation=\"{op}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "keyfrag_operation_duration_seconds_count{{operation=\"{op}\"}} {}",
                load(&h.count)
            );
        }

        header(
            &mut out,
            "keyfrag_errors_total",
            "counter",
            "Error answers, by wire error code.",
        );
        for (code, n) in CODES.iter().zip(&self.errors) {
            let _ = writeln!(
                out,
                "keyfrag_errors_total{{code=\"{}\"}} {}",
                code_name(*code),
                load(n)
            );
        }

        header(
            &mut out,
            "keyfrag_rate_limited_total",
            "counter",
            "Requests refused by the per-token rate limit.",
        );
        let names = self.tokens.iter().map(String::as_str).chain(["other"]);
        for (token, n) in names.zip(&self.rate_limited) {
            let _ = writeln!(
                out,
                "keyfrag_rate_limited_total{{token=\"{}\"}} {}",
                escape(token),
                load(n)
            );
        }

        header(
            &mut out,
            "keyfrag_keys",
            "gauge",
            "Live keys, by token, kind and lifetime.",
        );
        for s in keys {
            let _ = writeln!(
                out,
                "keyfrag_keys{{token=\"{}\",kind=\"{}\",lifetime=\"{}\"}} {}",
                escape(&s.token),
                escape(&s.kind),
                s.lifetime,
                s.count
            );
        }
        for (name, help, pick) in [
            (
                "keyfrag_key_epoch_max",
                "Highest committed epoch among the token's live keys.",
                (|s: &KeyStat| s.max_epoch) as fn(&KeyStat) -> u64,
            ),
            (
                "keyfrag_key_epoch_min",
                "Lowest committed epoch among the token's live keys.",
                |s: &KeyStat| s.min_epoch,
            ),
        ] {
            header(&mut out, name, "gauge", help);
            // The store orders the rows by token, so each token's rows are adjacent.
            for rows in keys.chunk_by(|a, b| a.token == b.token) {
                let values = rows.iter().map(pick);
                let value = if name.ends_with("max") {
                    values.max()
                } else {
                    values.min()
                };
                if let Some(v) = value {
                    let _ = writeln!(out, "{name}{{token=\"{}\"}} {v}", escape(&rows[0].token));
                }
            }
        }

        header(
            &mut out,
            "keyfrag_refresh_paused",
            "gauge",
            "1 while a backup holds refresh paused on this cell.",
        );
        let _ = writeln!(out, "keyfrag_refresh_paused {}", u8::from(refresh_paused));
        out
    }
}

/// The operation a route's latency counts under, if any.
fn operation_of(route: &str) -> Option<usize> {
    let op = if route.ends_with("/rsa-partial") {
        "partial"
    } else if route.ends_with("/prf-evaluate") {
        "prf_evaluate"
    } else if route.starts_with("/v1/keygen/") {
        "keygen_step"
    } else if route.contains("/refresh/") {
        "refresh_step"
    } else if route.starts_with("/v1/objects") {
        "objects"
    } else {
        return None;
    };
    OPERATIONS.iter().position(|&o| o == op)
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the exposition format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.route("…"` literal in the server's sources (but the operator's and the metrics
    /// listener's own) must be a counted template.
    #[test]
    fn every_route_is_counted() {
        fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for part in text.split(".route(").skip(1) {
                        let part = part.trim_start();
                        if let Some(rest) = part.strip_prefix('"') {
                            found.push(rest.split('"').next().unwrap().to_string());
                        }
                    }
                }
            }
        }
        let mut found = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut found,
        );
        assert!(found.len() > 20, "{found:?}");
        for route in found {
            if !route.starts_with('/') || route.starts_with(ADMIN_PREFIX) || route == "/metrics" {
                continue;
            }
            assert!(ROUTES.contains(&route.as_str()), "{route} is not counted");
        }
    }

    #[test]
    fn counts_render() {
        let m = Metrics::new(vec!["t1".into()]);
        m.record_request(
            Some("/v1/keys/{uid}/rsa-partial"),
            200,
            Duration::from_millis(3),
        );
        m.record_request(None, 404, Duration::from_millis(1));
        m.record_request(Some("/v1/admin/x"), 401, Duration::from_millis(1));
        m.record_error(ErrorCode::KeyNotFound);
        m.record_rate_limited("t1");
        let stats = vec![KeyStat {
            token: "t1".into(),
            kind: "rsa".into(),
            lifetime: "token",
            count: 2,
            min_epoch: 1,
            max_epoch: 3,
        }];
        let text = m.render(&stats, false);
        for line in [
            "keyfrag_requests_total{route=\"/v1/keys/{uid}/rsa-partial\",status=\"200\"} 1",
            "keyfrag_requests_total{route=\"other\",status=\"404\"} 1",
            "keyfrag_requests_total{route=\"/v1/admin/x\",status=\"401\"} 1",
            "keyfrag_operation_duration_seconds_bucket{operation=\"partial\",le=\"0.0025\"} 0",
            "keyfrag_operation_duration_seconds_bucket{operation=\"partial\",le=\"0.005\"} 1",
            "keyfrag_operation_duration_seconds_bucket{operation=\"partial\",le=\"+Inf\"} 1",
            "keyfrag_operation_duration_seconds_count{operation=\"partial\"} 1",
            "keyfrag_errors_total{code=\"key_not_found\"} 1",
            "keyfrag_rate_limited_total{token=\"t1\"} 1",
            "keyfrag_keys{token=\"t1\",kind=\"rsa\",lifetime=\"token\"} 2",
            "keyfrag_key_epoch_max{token=\"t1\"} 3",
            "keyfrag_key_epoch_min{token=\"t1\"} 1",
            "keyfrag_refresh_paused 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
    }
}
