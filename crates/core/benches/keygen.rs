//! Distributed RSA generation, in process: per-unit costs and per-key totals.
//!
//! `cargo bench -p keyfrag-core --bench keygen` (release). Environment: KEYGEN_BITS (2048),
//! KEYGEN_RUNS (5), KEYGEN_PARTIES (3: cells), KEYGEN_BATCH (1024), KEYGEN_SEED (1),
//! KEYGEN_MODE (`cells`, `customer` or `both`: customer mode adds the customer as one more
//! party, with a Paillier key of |N| + 1024 bits; its rows are marked `C`; cells precompute
//! their encryption randomisers between messages unless KEYGEN_PRECOMPUTE=0). Each run uses
//! a different seeded candidate stream, so a given seed is reproducible. The parties run one
//! after another on one thread; "critical path" is the slowest party's CPU time, i.e. what a
//! cluster whose cells compute in parallel would spend on computation alone.

use std::collections::VecDeque;
use std::time::Instant;

use keyfrag_core::customer::CustomerSeed;
use keyfrag_core::keygen::{Dest, KeygenParams, Message, Party, SeededRng, Stats, Step};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `cells` cells, plus the customer (last) in customer mode.
fn run(
    cells: usize,
    bits: usize,
    batch: usize,
    seed: u64,
    customer: bool,
    precompute: bool,
) -> (Vec<Stats>, f64, Vec<u8>) {
    let mut params = if customer {
        KeygenParams::customer([seed as u8; 16], bits)
    } else {
        KeygenParams::new([seed as u8; 16], bits)
    };
    params.batch = batch;
    let n = cells + customer as usize;
    let mut parties: Vec<Party<SeededRng>> = (0..cells)
        .map(|i| Party::new(i, n, params.clone(), SeededRng::new(seed, i)).unwrap())
        .collect();
    if customer {
        let c = CustomerSeed::from_bytes([seed as u8; 32])
            .rsa_share("bench", bits)
            .unwrap();
        parties.push(Party::new_customer(n, params, SeededRng::new(seed, cells), c).unwrap());
    }
    let t = Instant::now();
    let mut queue: VecDeque<Message> = VecDeque::new();
    for p in parties.iter_mut() {
        queue.extend(p.start().unwrap());
    }
    let mut done = 0;
    let mut modulus = Vec::new();
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
                Step::Send(out) => {
                    queue.extend(out);
                    // A cell's idle work in customer mode: its replies' randomisers.
                    if precompute && j < cells {
                        parties[j].precompute(3 * batch).unwrap();
                    }
                }
                Step::Done(share) => {
                    done += 1;
                    modulus = share.modulus;
                }
            }
        }
    }
    assert_eq!(done, n);
    let wall = t.elapsed().as_secs_f64();
    (
        parties.iter().map(|p| p.stats().clone()).collect(),
        wall,
        modulus,
    )
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// (median, p90) by the nearest-rank method.
fn quantiles(v: &[f64]) -> (f64, f64) {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    (rank(0.5), rank(0.9))
}

fn cpu(s: &Stats) -> u64 {
    s.sieve_ns + s.product_ns + s.trial_division_ns + s.filter_ns + s.finish_ns
}

fn main() {
    let bits = env("KEYGEN_BITS", 2048);
    let runs = env("KEYGEN_RUNS", 5);
    let cells = env("KEYGEN_PARTIES", 3);
    let batch = env("KEYGEN_BATCH", 1024);
    let seed0 = env("KEYGEN_SEED", 1) as u64;
    let mode = std::env::var("KEYGEN_MODE").unwrap_or_else(|_| "cells".into());
    // The BGW prime search is per process and cached; keep it out of the first run.
    let t = Instant::now();
    let warm = KeygenParams::new([0; 16], bits);
    let _ = Party::new(0, cells, warm, SeededRng::new(0, 0)).unwrap();
    println!(
        "setup (BGW prime, sieve parameters): {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let modes: Vec<bool> = match mode.as_str() {
        "customer" => vec![true],
        "both" => vec![false, true],
        _ => vec![false],
    };
    for customer in modes {
        bench_mode(bits, runs, cells, batch, seed0, customer);
    }
}

fn bench_mode(bits: usize, runs: usize, cells: usize, batch: usize, seed0: u64, customer: bool) {
    let n = cells + customer as usize;
    // Customer mode: cells precompute their randomisers between messages unless
    // KEYGEN_PRECOMPUTE=0; that time is reported apart ("pre"), off the critical path.
    let precompute = customer && env("KEYGEN_PRECOMPUTE", 1) != 0;
    println!(
        "\n== {} mode: bits={bits} cells={cells} batch={batch}",
        if customer { "customer" } else { "cells-only" }
    );
    println!(
        "run  pairs  trialpass  filters  rounds  \
         us/pair  ms/filter(p0,p1)  B/pair/party  MB/key(all)  crit_s  cpu_all_s  wall_s  N"
    );
    // Per-key and per-unit series, one entry per run.
    let mut series: Vec<(&str, Vec<f64>)> = [
        "pairs per key",
        "rounds",
        "critical path s (slowest party CPU)",
        "CPU all parties s",
        "in-process wall s",
        "MB per key (all parties)",
        "us/pair/party: sieve",
        "us/pair/party: product",
        "us/pair/party: trial division",
        "us/pair/party: total",
        "ms/filter test (mean over parties)",
        "ms/filter test party 0",
        "filter tests per key",
        "ms finish (accepted candidate, max party)",
        "B/pair/party",
    ]
    .into_iter()
    .map(|k| (k, Vec::new()))
    .collect();
    for r in 0..runs {
        let (stats, wall, modulus) =
            run(cells, bits, batch, seed0 + r as u64, customer, precompute);
        let s0 = &stats[0];
        let pairs = s0.pairs as f64;
        let per_pair =
            |f: fn(&Stats) -> u64| stats.iter().map(f).sum::<u64>() as f64 / n as f64 / pairs / 1e3;
        let sieve = per_pair(|s| s.sieve_ns);
        let product = per_pair(|s| s.product_ns);
        let trial = per_pair(|s| s.trial_division_ns);
        let bytes: u64 = stats
            .iter()
            .map(|s| s.pairwise_bytes_sent + s.broadcast_bytes_sent)
            .sum();
        let crit = ms(stats.iter().map(cpu).max().unwrap()) / 1e3;
        let all = ms(stats.iter().map(cpu).sum()) / 1e3;
        let filter_tests: u64 = stats.iter().map(|s| s.filter_tests).sum();
        let fmean = ms(stats.iter().map(|s| s.filter_ns).sum()) / filter_tests.max(1) as f64;
        let f0 = ms(s0.filter_ns) / s0.filter_tests.max(1) as f64;
        let f1 = ms(stats[1].filter_ns) / stats[1].filter_tests.max(1) as f64;
        let finish = ms(stats.iter().map(|s| s.finish_ns).max().unwrap());
        let bpp = bytes as f64 / n as f64 / pairs;
        let fp: String = modulus[..4].iter().map(|b| format!("{b:02x}")).collect();
        println!(
            "{r:>3} {:>6} {:>10} {:>8} {:>7} {:>8.1} {:>8.2},{:<8.2} {:>12.0} {:>12.1} {:>7.2} {:>9.2} {:>7.2}  {fp}",
            s0.pairs,
            s0.trial_survivors,
            s0.filter_tests,
            s0.rounds,
            sieve + product + trial,
            f0,
            f1,
            bpp,
            bytes as f64 / 1e6,
            crit,
            all,
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
        if customer {
            // The customer's own costs, and the busiest cell's, per candidate pair.
            let c = &stats[cells];
            let per = |s: &Stats| (s.sieve_ns + s.product_ns) as f64 / pairs / 1e3;
            let busiest = stats[..cells].iter().map(per).fold(0.0, f64::max);
            let bytes_of = |s: &Stats| (s.pairwise_bytes_sent + s.broadcast_bytes_sent) as f64;
            let cell_bytes = stats[..cells].iter().map(bytes_of).fold(0.0, f64::max);
            let pre = stats[..cells]
                .iter()
                .map(|s| s.precompute_ns as f64 / pairs / 1e3)
                .fold(0.0, f64::max);
            println!(
                "   C us/pair: customer {:.0} (sieve {:.0}, product {:.0}), busiest cell {:.0} \
                 (+ {:.0} precomputed in idle time); B/pair sent: customer {:.0}, busiest cell {:.0}",
                per(c),
                c.sieve_ns as f64 / pairs / 1e3,
                c.product_ns as f64 / pairs / 1e3,
                busiest,
                pre,
                bytes_of(c) / pairs,
                cell_bytes / pairs
            );
        }
        let values = [
            pairs,
            s0.rounds as f64,
            crit,
            all,
            wall,
            bytes as f64 / 1e6,
            sieve,
            product,
            trial,
            sieve + product + trial,
            fmean,
            f0,
            s0.filter_tests as f64,
            finish,
            bpp,
        ];
        for ((_, v), x) in series.iter_mut().zip(values) {
            v.push(x);
        }
    }
    println!("summary over {runs} runs (median, p90):");
    for (name, v) in &series {
        let (med, p90) = quantiles(v);
        println!("  {name:<42} {med:>10.2} {p90:>10.2}");
    }
}
