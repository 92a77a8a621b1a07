//! Key-generation mode (`--keygen N`): N × C_GenerateKeyPair (CKM_RSA_PKCS_KEY_PAIR_GEN,
//! public exponent 65537, session objects destroyed after each) per size, on the module and
//! on the one it is compared with, interleaved (one on ours, then one on theirs) so both see
//! the same background load. Each generated key is read back and checked (modulus of the
//! requested size, e = 65537); a key that fails the check counts as an error.
//!
//! Wall time is what an application sees: for keyfrag that is the whole distributed
//! generation (every relay round trip to the cells, and the commit). The candidate count of
//! an RSA generation is geometric, so the spread is wide and a median needs many runs.

use std::sync::atomic::Ordering;

use rsa::traits::PublicKeyParts;
use serde::Serialize;

use super::STOP;
use super::module::{self, Module, ms, short};
use super::stats::{percentile, ratio};

/// One module at one size.
#[derive(Clone, Debug, Serialize)]
pub struct KeygenRow {
    pub module: String,
    pub bits: usize,
    /// Generations asked for; `generated + errors` is less when the run was interrupted.
    pub requested: usize,
    /// Generations that returned a valid key.
    pub generated: usize,
    pub errors: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Wall time of C_GenerateKeyPair over the successful generations (nearest rank).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// Every successful generation's wall time, in run order (ms).
    pub samples_ms: Vec<f64>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    pub min_ms: f64,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Nearest-rank summary of wall times in milliseconds; `None` when there are none.
pub fn summarize(samples_ms: &[f64]) -> Option<Summary> {
    if samples_ms.is_empty() {
        return None;
    }
    // Percentiles over whole microseconds (the shared nearest-rank helper works on u64).
    let mut us: Vec<u64> = samples_ms
        .iter()
        .map(|m| (m * 1000.0).round() as u64)
        .collect();
    us.sort_unstable();
    let at = |p: f64| percentile(&us, p).map(|x| x as f64 / 1000.0);
    Some(Summary {
        min_ms: us[0] as f64 / 1000.0,
        median_ms: at(50.0)?,
        p90_ms: at(90.0)?,
        max_ms: us[us.len() - 1] as f64 / 1000.0,
        mean_ms: samples_ms.iter().sum::<f64>() / samples_ms.len() as f64,
    })
}

/// Median and p90 ratios (ours ÷ theirs) of two rows, for the table and the JSON.
#[derive(Clone, Debug, Serialize)]
pub struct KeygenRatio {
    pub bits: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p90_ratio: Option<f64>,
}

pub fn ratios(rows: &[KeygenRow], ours: &str, theirs: &str) -> Vec<KeygenRatio> {
    let mut out = Vec::new();
    for r in rows.iter().filter(|r| r.module == ours) {
        let Some(t) = rows.iter().find(|t| t.module == theirs && t.bits == r.bits) else {
            continue;
        };
        let (a, b) = (r.summary.as_ref(), t.summary.as_ref());
        out.push(KeygenRatio {
            bits: r.bits,
            median_ratio: ratio(a.map(|s| s.median_ms), b.map(|s| s.median_ms)),
            p90_ratio: ratio(a.map(|s| s.p90_ms), b.map(|s| s.p90_ms)),
        });
    }
    out
}

fn new_row(module: &Module, bits: usize, requested: usize) -> KeygenRow {
    KeygenRow {
        module: module.info.name.clone(),
        bits,
        requested,
        generated: 0,
        errors: 0,
        first_error: None,
        summary: None,
        samples_ms: Vec::new(),
    }
}

/// One generation: time it, check the public key, destroy both objects. The wall time (ms)
/// of a good key, or why it failed.
fn generate_once(module: &Module, bits: usize) -> Result<f64, String> {
    let (generated, elapsed) = module::generate(module, bits);
    let (public, private) =
        generated.map_err(|e| format!("C_GenerateKeyPair RSA-{bits}: {}", short(&e)))?;
    let checked = module::read_public(module, public).and_then(|k| {
        let n = k.n_bytes();
        let got = n.len() * 8 - n.first().map(|b| b.leading_zeros() as usize).unwrap_or(8);
        let e = k.e_bytes();
        if got != bits {
            Err(format!(
                "generated modulus has {got} bits, asked for {bits}"
            ))
        } else if e.as_ref() != [1, 0, 1] {
            Err(format!("generated public exponent is {}", hex::encode(&e)))
        } else {
            Ok(())
        }
    });
    for h in [private, public] {
        if let Err(e) = module.admin.destroy_object(h) {
            eprintln!(
                "bench: {}: C_DestroyObject of a generated key: {}",
                module.info.name,
                short(&e)
            );
        }
    }
    checked.map(|()| ms(elapsed))
}

fn secs(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

/// `counts[i]` generations of `bits[i]` on each module, interleaved.
pub fn run(
    modules: &[&Module],
    bits: &[usize],
    counts: &[usize],
) -> Result<Vec<KeygenRow>, String> {
    let mut rows = Vec::new();
    for (&b, &n) in bits.iter().zip(counts) {
        let mut size_rows: Vec<KeygenRow> = modules.iter().map(|m| new_row(m, b, n)).collect();
        for i in 0..n {
            if STOP.load(Ordering::Relaxed) {
                break;
            }
            let mut line = format!("bench: keygen RSA-{b} {:>3}/{n}", i + 1);
            for (m, row) in modules.iter().zip(size_rows.iter_mut()) {
                match generate_once(m, b) {
                    Ok(t) => {
                        row.generated += 1;
                        row.samples_ms.push(t);
                        line.push_str(&format!("  {} {}", m.info.name, secs(t)));
                    }
                    Err(e) => {
                        row.errors += 1;
                        line.push_str(&format!("  {} ERROR", m.info.name));
                        eprintln!("bench: {}: {e}", m.info.name);
                        row.first_error.get_or_insert(e);
                    }
                }
            }
            eprintln!("{line}");
        }
        for row in &mut size_rows {
            row.summary = summarize(&row.samples_ms);
        }
        rows.extend(size_rows);
    }
    if rows.iter().all(|r| r.generated == 0) && !STOP.load(Ordering::Relaxed) {
        let why = rows
            .iter()
            .find_map(|r| r.first_error.clone())
            .unwrap_or_else(|| "nothing to do".into());
        return Err(format!("no key was generated: {why}"));
    }
    Ok(rows)
}

/// `--keygen`: one count for every size, or one per size (`30,5,2` with `--bits
/// 2048,3072,4096`).
pub fn counts(list: &[usize], bits: &[usize]) -> Result<Vec<usize>, String> {
    match list {
        [n] if *n > 0 => Ok(vec![*n; bits.len()]),
        l if l.len() == bits.len() && l.iter().all(|&n| n > 0) => Ok(l.to_vec()),
        _ => Err("--keygen: one count ≥ 1, or one per --bits size".into()),
    }
}

/// The table lines of the key-generation mode.
pub fn table(rows: &[KeygenRow], ratios: &[KeygenRatio], out: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "\nkey generation: C_GenerateKeyPair CKM_RSA_PKCS_KEY_PAIR_GEN (e = 65537, session \
         keys), one at a time, wall time"
    );
    let _ = writeln!(
        out,
        "{:<9} {:<10} {:>5} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "size", "module", "keys", "errors", "min", "median", "p90", "max", "mean"
    );
    let mut sizes: Vec<usize> = Vec::new();
    for r in rows {
        if !sizes.contains(&r.bits) {
            sizes.push(r.bits);
        }
    }
    for b in sizes {
        for (i, r) in rows.iter().filter(|r| r.bits == b).enumerate() {
            let size = if i == 0 {
                format!("RSA-{b}")
            } else {
                String::new()
            };
            let cell = |f: fn(&Summary) -> f64| r.summary.as_ref().map(f).map(secs);
            let cells: Vec<String> = [
                cell(|s| s.min_ms),
                cell(|s| s.median_ms),
                cell(|s| s.p90_ms),
                cell(|s| s.max_ms),
                cell(|s| s.mean_ms),
            ]
            .into_iter()
            .map(|c| c.unwrap_or_else(|| "-".into()))
            .collect();
            let _ = writeln!(
                out,
                "{size:<9} {:<10} {:>5} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10}",
                r.module, r.generated, r.errors, cells[0], cells[1], cells[2], cells[3], cells[4]
            );
            if let Some(e) = &r.first_error {
                let _ = writeln!(out, "{:<9} ! first error: {e}", "");
            }
        }
        if let Some(x) = ratios.iter().find(|x| x.bits == b) {
            let f = |r: Option<f64>| match r {
                Some(r) if r >= 10.0 => format!("{r:.1}x"),
                Some(r) => format!("{r:.2}x"),
                None => "-".into(),
            };
            let _ = writeln!(
                out,
                "{:<9} {:<10} {:>5} {:>6} {:>10} {:>10} {:>10}",
                "",
                "ours/them",
                "",
                "",
                "",
                f(x.median_ratio),
                f(x.p90_ratio)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_nearest_rank() {
        let v: Vec<f64> = (1..=30).map(|x| x as f64 * 100.0).collect();
        let s = summarize(&v).unwrap();
        assert_eq!(s.min_ms, 100.0);
        assert_eq!(s.median_ms, 1500.0);
        assert_eq!(s.p90_ms, 2700.0);
        assert_eq!(s.max_ms, 3000.0);
        assert_eq!(s.mean_ms, 1550.0);
        assert_eq!(summarize(&[]), None);
        let one = summarize(&[2.5]).unwrap();
        assert_eq!((one.median_ms, one.p90_ms), (2.5, 2.5));
    }

    #[test]
    fn counts_per_size() {
        assert_eq!(counts(&[3], &[2048, 3072]).unwrap(), vec![3, 3]);
        assert_eq!(
            counts(&[30, 5, 2], &[2048, 3072, 4096]).unwrap(),
            vec![30, 5, 2]
        );
        assert!(counts(&[30, 5], &[2048, 3072, 4096]).is_err());
        assert!(counts(&[0], &[2048]).is_err());
    }
}
