//! Statistics over latency samples (nanoseconds): nearest-rank percentiles, a summary.

use serde::Serialize;

/// The `p`-th percentile (0 < p ≤ 100) of `sorted` (ascending) by the nearest-rank method:
/// the smallest sample such that at least p% of the samples are ≤ it. `None` when empty.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() || p.is_nan() || p <= 0.0 || p > 100.0 {
        return None;
    }
    let n = sorted.len();
    // ceil(p/100 · n) as a 1-based rank, clamped to [1, n].
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// Latency summary of one measurement, in microseconds.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Latency {
    pub samples: usize,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub min_us: f64,
    pub max_us: f64,
}

/// Summarise samples in nanoseconds (sorts them in place). `None` when there are none.
pub fn summarize(samples_ns: &mut [u64]) -> Option<Latency> {
    if samples_ns.is_empty() {
        return None;
    }
    samples_ns.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    let sum: u128 = samples_ns.iter().map(|&x| x as u128).sum();
    Some(Latency {
        samples: samples_ns.len(),
        mean_us: sum as f64 / samples_ns.len() as f64 / 1000.0,
        p50_us: us(percentile(samples_ns, 50.0)?),
        p99_us: us(percentile(samples_ns, 99.0)?),
        min_us: us(samples_ns[0]),
        max_us: us(samples_ns[samples_ns.len() - 1]),
    })
}

/// `ours / theirs`, or `None` when either is missing or `theirs` is zero.
pub fn ratio(ours: Option<f64>, theirs: Option<f64>) -> Option<f64> {
    match (ours, theirs) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.5), Some(1));
        let v: Vec<u64> = (1..=10).collect();
        // 99% of 10 samples: rank ceil(9.9) = 10.
        assert_eq!(percentile(&v, 99.0), Some(10));
        assert_eq!(percentile(&v, 50.0), Some(5));
        assert_eq!(percentile(&[7], 50.0), Some(7));
        assert_eq!(percentile(&[7], 99.0), Some(7));
    }

    #[test]
    fn percentile_edge_cases() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[1, 2, 3], 0.0), None);
        assert_eq!(percentile(&[1, 2, 3], 101.0), None);
        assert_eq!(percentile(&[1, 2, 3], f64::NAN), None);
    }

    #[test]
    fn summary_sorts_and_converts_to_microseconds() {
        let mut v = vec![3000, 1000, 2000, 4000];
        let s = summarize(&mut v).unwrap();
        assert_eq!(v, vec![1000, 2000, 3000, 4000]);
        assert_eq!(s.samples, 4);
        assert_eq!(s.p50_us, 2.0);
        assert_eq!(s.p99_us, 4.0);
        assert_eq!(s.min_us, 1.0);
        assert_eq!(s.max_us, 4.0);
        assert_eq!(s.mean_us, 2.5);
        assert_eq!(summarize(&mut []), None);
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(Some(3.0), Some(4.0)), Some(0.75));
        assert_eq!(ratio(Some(3.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(1.0)), None);
    }
}
