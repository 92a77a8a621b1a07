//! Batches and the filter: a fresh sieved batch, filter chunks, the next candidate.

use std::time::Instant;

use super::super::biprime::{self, Modulus};
use super::super::msg::{Message, Phase};
use super::super::rng::KeygenRng;
use super::super::sieve::SieveRun;
use super::super::{KeygenError, Result};
use super::{Party, ns};

impl<R: KeygenRng> Party<R> {
    /// Split each peer's broadcast into `count` elements of N's width (N of the chunk).
    pub(super) fn by_party<'a>(
        &self,
        bcasts: &[(usize, &'a [u8])],
        count: usize,
    ) -> Result<Vec<Vec<&'a [u8]>>> {
        let len = self.params.modulus_bits.div_ceil(8);
        let mut out = vec![Vec::new(); self.n];
        for (j, body) in bcasts {
            if body.len() != count * len {
                return Err(KeygenError::Malformed("broadcast length"));
            }
            out[*j] = body.chunks_exact(len).collect();
        }
        Ok(out)
    }

    /// Time a step of the accepted candidate (nested calls count once).
    pub(super) fn timed<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let t = Instant::now();
        let before = self.stats.clone();
        let r = f(self);
        // Work another bucket already counted (a rejected candidate's next filter) is not
        // counted twice.
        let inner = (self.stats.sieve_ns - before.sieve_ns)
            + (self.stats.filter_ns - before.filter_ns)
            + (self.stats.finish_ns - before.finish_ns);
        self.stats.finish_ns += ns(t).saturating_sub(inner);
        r
    }

    pub(super) fn new_batch(&mut self) -> Result<Vec<Message>> {
        self.stats.batches += 1;
        self.stats.pairs += self.params.batch as u64;
        if self.params.customer_mode {
            return self.new_batch_hybrid();
        }
        let t = Instant::now();
        let (run, out) = SieveRun::deal(
            &self.sieve,
            self.me,
            self.n,
            2 * self.params.batch,
            &mut self.rng,
        )?;
        self.stats.sieve_ns += ns(t);
        self.sieve_run = Some(run);
        self.emit(Phase::SieveDeal, out, None)
    }

    /// One filter iteration on the next chunk of survivors, or a new batch.
    pub(super) fn next_filter(&mut self) -> Result<Vec<Message>> {
        if self.survivors.is_empty() {
            return self.new_batch();
        }
        let t = Instant::now();
        let take = self.params.filter_chunk.min(self.survivors.len());
        let mut body = Vec::new();
        for _ in 0..take {
            let idx = self.survivors.pop_front().expect("nonempty");
            let m = Modulus::new(&self.moduli[idx]);
            let g = biprime::filter_base(&m);
            let exps = biprime::Exponents::new(self.me, &m, &self.ps[idx], &self.qs[idx], self.k);
            let carrier = biprime::carrier(idx, 0, self.n) == self.me;
            let v = exps.value(&m, None, &g, carrier);
            m.zn.encode(&v, &mut body);
            self.chunk.push((idx, m, v));
        }
        self.stats.filter_tests += take as u64;
        self.stats.filter_ns += ns(t);
        self.emit(Phase::Filter, Vec::new(), Some(body))
    }

    pub(super) fn next_candidate(&mut self) -> Result<Vec<Message>> {
        match self.passed.pop_front() {
            Some(idx) => self.timed(|p| p.begin_full_test(idx)),
            None => self.next_filter(),
        }
    }
}
