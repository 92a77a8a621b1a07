//! Requests per token: a token bucket per access key, so one token's clients — a runaway
//! application, or a stolen access key without a PIN — cannot take a cell's CPU from the
//! others. Checked after authentication, before any route runs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// A steady rate with a burst allowance; `per_sec` 0 turns the limit off.
pub struct RateLimit {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    pub fn new(per_sec: u32, burst: u32) -> Self {
        RateLimit {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst.max(per_sec).max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether one more request for `token` is admitted now.
    pub fn admit(&self, token: &str) -> bool {
        self.admit_at(token, Instant::now())
    }

    fn admit_at(&self, token: &str, now: Instant) -> bool {
        if self.per_sec == 0.0 {
            return true;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets.entry(token.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_sec).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_steady_rate_per_token() {
        let limit = RateLimit::new(10, 20);
        let t0 = Instant::now();
        assert!((0..20).all(|_| limit.admit_at("a", t0)));
        assert!(!limit.admit_at("a", t0));
        // Another token has its own bucket.
        assert!(limit.admit_at("b", t0));
        // A tenth of a second refills one request.
        let t1 = t0 + Duration::from_millis(100);
        assert!(limit.admit_at("a", t1));
        assert!(!limit.admit_at("a", t1));
        // Never more than the burst, however long the pause.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..30).filter(|_| limit.admit_at("a", t2)).count(), 20);
    }

    #[test]
    fn zero_turns_it_off() {
        let limit = RateLimit::new(0, 0);
        let t0 = Instant::now();
        assert!((0..10_000).all(|_| limit.admit_at("a", t0)));
    }
}
