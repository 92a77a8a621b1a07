//! Distributed RSA generation, in process: per-unit costs and per-key totals.
//!
//! `cargo bench -p keyfrag-core --bench keygen` (release). Environment: KEYGEN_BITS (2048),
//! KEYGEN_RUNS (5), KEYGEN_PARTIES (3), KEYGEN_BATCH (1024), KEYGEN_SEED (1). Each run uses
//! a different seeded candidate stream, so a given seed is reproducible. The parties run one
//! after another on one thread; "critical path" is the slowest party's CPU time, i.e. what a
//! cluster whose cells compute in parallel would spend on computation alone.

use std::collections::VecDeque;
use std::time::Instant;

use keyfrag_core::keygen::{Dest, KeygenParams, Message, Party, SeededRng, Stats, Step};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(n: usize, bits: usize, batch: usize, seed: u64) -> (Vec<Stats>, f64) {
    let mut params = KeygenParams::new([seed as u8; 16], bits);
    params.batch = batch;
    let mut parties: Vec<Party<SeededRng>> = (0..n)
        .map(|i| Party::new(i, n, params.clone(), SeededRng::new(seed, i)).unwrap())
        .collect();
    let t = Instant::now();
    let mut queue: VecDeque<Message> = VecDeque::new();
    for p in parties.iter_mut() {
        queue.extend(p.start().unwrap());
    }
    let mut done = 0;
    while let Some(msg) = queue.pop_front() {
        let bytes = msg.to_bytes();
        let to: Vec<usize> = match msg.dest {
            Dest::To(j) => vec![j as usize],
            Dest::Broadcast => (0..n).filter(|&j| j != msg.sender as usize).collect(),
        };
        for j in to {
            match parties[j]
                .handle(Message::from_bytes(&bytes).unwrap())
                .unwrap()
            {
                Step::Send(out) => queue.extend(out),
                Step::Done(_) => done += 1,
            }
        }
    }
    assert_eq!(done, n);
    let wall = t.elapsed().as_secs_f64();
    (parties.iter().map(|p| p.stats().clone()).collect(), wall)
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let bits = env("KEYGEN_BITS", 2048);
    let runs = env("KEYGEN_RUNS", 5);
    let n = env("KEYGEN_PARTIES", 3);
    let batch = env("KEYGEN_BATCH", 1024);
    let seed0 = env("KEYGEN_SEED", 1) as u64;
    // The BGW prime search is per process and cached; keep it out of the first run.
    let t = Instant::now();
    let warm = KeygenParams::new([0; 16], bits);
    let _ = Party::new(0, n, warm, SeededRng::new(0, 0)).unwrap();
    println!(
        "setup (BGW prime, sieve parameters): {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "bits={bits} n={n} batch={batch}\nrun  pairs  trialpass  filters  rounds  \
         us/pair  ms/filter(p0,p1)  B/pair/party  MB/key(all)  crit_s  wall_s"
    );
    let (mut crit, mut walls, mut per_pair, mut per_filter0, mut per_filter1) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in 0..runs {
        let (stats, wall) = run(n, bits, batch, seed0 + r as u64);
        let s0 = &stats[0];
        let pairs = s0.pairs as f64;
        let pair_ns: u64 = stats
            .iter()
            .map(|s| s.sieve_ns + s.product_ns + s.trial_division_ns)
            .sum::<u64>()
            / n as u64;
        let bytes: u64 = stats
            .iter()
            .map(|s| s.pairwise_bytes_sent + s.broadcast_bytes_sent)
            .sum();
        let cpu: Vec<u64> = stats
            .iter()
            .map(|s| s.sieve_ns + s.product_ns + s.trial_division_ns + s.filter_ns + s.finish_ns)
            .collect();
        let c = ms(*cpu.iter().max().unwrap()) / 1e3;
        let f0 = ms(s0.filter_ns) / s0.filter_tests.max(1) as f64;
        let f1 = ms(stats[1].filter_ns) / stats[1].filter_tests.max(1) as f64;
        println!(
            "{r:>3} {:>6} {:>10} {:>8} {:>7} {:>8.1} {:>8.2},{:<8.2} {:>12.0} {:>12.1} {:>7.2} {:>7.2}",
            s0.pairs,
            s0.trial_survivors,
            s0.filter_tests,
            s0.rounds,
            ms(pair_ns) * 1e3 / pairs,
            f0,
            f1,
            bytes as f64 / n as f64 / pairs,
            bytes as f64 / 1e6,
            c,
            wall
        );
        println!(
            "     party0 ms: sieve {:.0} product {:.0} trial {:.0} filter {:.0} finish {:.0}",
            ms(s0.sieve_ns),
            ms(s0.product_ns),
            ms(s0.trial_division_ns),
            ms(s0.filter_ns),
            ms(s0.finish_ns)
        );
        crit.push(c);
        walls.push(wall);
        per_pair.push(ms(pair_ns) * 1e3 / pairs);
        per_filter0.push(f0);
        per_filter1.push(f1);
    }
    println!(
        "median: critical path {:.2} s, in-process wall {:.2} s, {:.1} us/pair, filter {:.2} ms (party 0) / {:.2} ms (others)",
        median(&mut crit),
        median(&mut walls),
        median(&mut per_pair),
        median(&mut per_filter0),
        median(&mut per_filter1)
    );
}
