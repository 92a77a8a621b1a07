//! `keyfrag pool fill|list`: the token's pool of keys generated ahead of time (issue 4), from
//! which C_GenerateKeyPair takes a key of the asked size instantly. Without a pooled key the
//! module generates one on the spot, which with a customer fragment takes minutes.
//!
//! `fill` runs the same generation protocol as the module, into the pool; on a token with a
//! customer fragment this process is the customer party (the seed opened with the user PIN),
//! so no party ever holds a whole key. Ctrl-C stops the generation in progress: the client
//! aborts it on every cell (and deletes a key some cells already stored), so the pool only
//! ever holds whole keys; the keys finished before stay.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use keyfrag_client::cluster::KeygenOptions;
use keyfrag_client::{Cluster, ErrorKind, customer_file};
use keyfrag_core::customer::CustomerSeed;

use crate::secret_input::SecretInput;

/// RSA sizes a pool may hold (1024 only on tokens that allow it, as for the module).
const SIZES: [u32; 4] = [1024, 2048, 3072, 4096];

/// Generate `count` keys of `bits` into the pool, one after the other, printing each with
/// the time it took. Returns the uids added. Stops early, with what was added so far, when
/// `cancel` is set.
pub fn fill(
    cluster: &Cluster,
    count: usize,
    bits: u32,
    customer: Option<&CustomerSeed>,
    cancel: &AtomicBool,
    out: &mut dyn Write,
) -> Result<Vec<String>, String> {
    if !SIZES.contains(&bits) {
        return Err(format!(
            "RSA-{bits} is no size the cells generate (2048, 3072, 4096)"
        ));
    }
    let opts = KeygenOptions {
        lease_secs: None,
        pooled: true,
        customer,
    };
    let mode = if customer.is_some() {
        "customer mode"
    } else {
        "cells only"
    };
    let mut added = Vec::new();
    for i in 0..count {
        if cancel.load(Ordering::SeqCst) {
            break;
        }
        let uid = keyfrag_core::random::uid_hex().map_err(|e| e.to_string())?;
        let started = Instant::now();
        match cluster.generate_rsa_key_with(&uid, bits, &opts, cancel) {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::Cancelled => {
                let _ = writeln!(
                    out,
                    "interrupted: the generation in progress was aborted on every cell"
                );
                break;
            }
            Err(e) => {
                return Err(format!(
                    "generating pooled key {} of {count} ({} added before): {}",
                    i + 1,
                    added.len(),
                    e.message
                ));
            }
        }
        let _ = writeln!(
            out,
            "pooled {uid} RSA-{bits} ({mode}) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        added.push(uid);
    }
    Ok(added)
}

/// `keyfrag pool list`: the pooled keys, their sizes, and any key that only some cells hold
/// pooled (a claim or fill that stopped half-way; the module never hands those out).
pub fn list(cluster: &Cluster) -> Result<String, String> {
    let entries = cluster.pool_list().map_err(|e| e.message)?;
    let stranded = cluster.pool_stranded().map_err(|e| e.message)?;
    let mut out = String::from("UID                              BITS\n");
    for e in &entries {
        out.push_str(&format!("{:<32} {}\n", e.uid, e.bits));
    }
    out.push_str(&format!("pool: {}\n", crate::keys::pool_sizes(&entries)));
    for (e, cells) in &stranded {
        out.push_str(&format!(
            "{} RSA-{} is pooled on {} only (a claim stopped half-way, or the cells disagree \
             on its public key): never handed out\n",
            e.uid,
            e.bits,
            cells.join(", ")
        ));
    }
    Ok(out)
}

/// The customer seed for `fill`: from `file`, else from the token's configured
/// `customer_fragment`, opened with the user PIN; None on a token without one.
pub fn customer_seed(
    cluster: &Cluster,
    file: Option<&Path>,
    input: &mut SecretInput,
) -> Result<Option<CustomerSeed>, String> {
    let Some(file) = file.or(cluster.config().customer_fragment.as_deref()) else {
        return Ok(None);
    };
    let sealed = customer_file::load(file).map_err(|e| e.to_string())?;
    let pin = input.read("user PIN", "user PIN")?;
    let seed = sealed
        .open_with_pin(pin.as_bytes())
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(Some(seed))
}

/// Sets `flag` on Ctrl-C (SIGINT) from a small thread, so a fill in progress is aborted on
/// every cell instead of the process dying between a cell's commit and the others'.
pub fn cancel_on_ctrl_c(flag: &'static AtomicBool) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pool fill: no Ctrl-C handler: {e}");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("pool-sigint".into())
        .spawn(move || {
            runtime.block_on(async {
                while tokio::signal::ctrl_c().await.is_ok() {
                    flag.store(true, Ordering::SeqCst);
                    eprintln!("pool fill: interrupted; aborting the generation in progress");
                }
            })
        });
    if let Err(e) = spawned {
        eprintln!("pool fill: no Ctrl-C handler: {e}");
    }
}
