//! `keyfrag refresh [--key UID | --all] [--every DURATION]`: proactive refresh of token keys'
//! fragments (docs/REFRESH.md). Uses $KEYFRAG_CONF and the access keys like every other
//! command; no PIN, so it can run unattended (e.g. `--every 1h` under a service manager).

use std::io::Write;
use std::time::{Duration, Instant};

use keyfrag_client::cluster::{DEFAULT_PARALLEL, RefreshOutcome};
use keyfrag_client::{ClientError, Cluster};

use crate::keys::token_cluster;

pub struct RefreshOptions {
    pub token: Option<String>,
    /// One key by uid (as `keyfrag keys list` shows it); None with `all`.
    pub key: Option<String>,
    pub all: bool,
    /// Repeat forever, this long between the start of one pass and the next.
    pub every: Option<Duration>,
    /// Runs in flight at once for `--all`.
    pub parallel: usize,
}

/// "90", "90s", "15m", "2h", "1d": a whole number of seconds, minutes, hours or days.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?} (e.g. 90s, 15m, 2h, 1d)"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("bad duration unit in {text:?} (s, m, h or d)")),
    };
    match n.checked_mul(scale) {
        Some(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
        _ => Err(format!(
            "duration {text:?} must be positive and not absurdly long"
        )),
    }
}

/// One line per key.
fn line(uid: &str, result: &Result<RefreshOutcome, ClientError>) -> String {
    match result {
        Ok(o) => {
            let recovered = o
                .recovered
                .as_ref()
                .map(|r| format!("  (first {r})"))
                .unwrap_or_default();
            format!(
                "{uid}  epoch {} -> {}  {:.1} ms{recovered}",
                o.from_epoch,
                o.epoch,
                o.elapsed.as_secs_f64() * 1000.0
            )
        }
        Err(e) => format!("{uid}  FAILED: {}", e.message),
    }
}

/// One pass; returns each failed key's reason.
fn pass(
    cluster: &Cluster,
    opts: &RefreshOptions,
    out: &mut dyn Write,
) -> Result<Vec<String>, String> {
    let started = Instant::now();
    let results = match &opts.key {
        Some(uid) => vec![(uid.clone(), cluster.refresh_key(uid))],
        None => cluster.refresh_all(opts.parallel).map_err(|e| e.message)?,
    };
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(uid, r)| r.as_ref().err().map(|e| format!("{uid}: {}", e.message)))
        .collect();
    for (uid, r) in &results {
        writeln!(out, "{}", line(uid, r)).map_err(|e| e.to_string())?;
    }
    let secs = started.elapsed().as_secs_f64();
    let done = results.len() - failed.len();
    writeln!(
        out,
        "refreshed {done} of {} keys in {secs:.2} s ({:.1} keys/s)",
        results.len(),
        done as f64 / secs.max(1e-9)
    )
    .map_err(|e| e.to_string())?;
    Ok(failed)
}

pub fn run(opts: &RefreshOptions, out: &mut dyn Write) -> Result<(), String> {
    if opts.all == opts.key.is_some() {
        return Err("name one key (--key UID) or all of them (--all)".into());
    }
    let cluster = token_cluster(None, opts.token.as_deref())?;
    let Some(every) = opts.every else {
        let failed = pass(&cluster, opts, out)?;
        return match failed.first() {
            None => Ok(()),
            Some(first) => Err(format!(
                "{} key(s) not refreshed (first: {first}); each is still usable, and the next \
                 refresh finishes what was left",
                failed.len()
            )),
        };
    };
    loop {
        let started = Instant::now();
        // A failing pass is reported and retried at the next one: a refresh never strands a
        // key, so waiting is always safe.
        if let Err(e) = pass(&cluster, opts, out) {
            writeln!(out, "refresh pass failed: {e}").map_err(|e| e.to_string())?;
        }
        out.flush().map_err(|e| e.to_string())?;
        std::thread::sleep(every.saturating_sub(started.elapsed()));
    }
}

/// Runs in flight for `--all` unless told otherwise.
pub const PARALLEL: usize = DEFAULT_PARALLEL;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        for bad in ["", "0", "m", "5w", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
