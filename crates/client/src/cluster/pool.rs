//! The key pool (issue 4, `crate::cluster` fan-out): keys generated ahead of time with
//! `KeygenOptions { pooled: true, .. }`, listed and claimed here, so that an application's
//! C_GenerateKeyPair is instant — above all with a customer fragment, where one generation
//! takes minutes.
//!
//! A claim is atomic on each cell but not across cells. The first cell arbitrates: whoever
//! claims a key there owns it, and then claims it on the others, which (everyone going through
//! the first cell first) normally cannot refuse. If one does anyway (unreachable, restored from
//! an older backup, a claim raced by a client with another cell order), the key cannot be put
//! back: there is no "unclaim", and the first cell's claim already told every other claimer
//! "taken". It is then half claimed — pooled on some cells, which refuse it partials, and
//! claimed on others — so no one can use it: `claim_pooled` deletes it from every cell it can
//! reach and returns the error, and the caller takes another key. A cell that missed the delete
//! keeps a pooled copy that `pool_list` skips (it is not in every cell's pool) and logs.

use std::collections::BTreeMap;

use futures::future::join_all;
use keyfrag_proto::keys::{ClaimRequest, PoolEntry, PoolList};
use keyfrag_proto::token::Ack;

use super::{Cluster, all_ok, get, post};
use crate::error::{ClientError, ErrorKind, Result};

impl Cluster {
    /// The keys in every cell's pool (same uid and size everywhere), in uid order. A key
    /// missing from some cell's pool (claimed there, or never stored there) is skipped and
    /// logged.
    pub fn pool_list(&self) -> Result<Vec<PoolEntry>> {
        let n = self.cell_count();
        let mut out = Vec::new();
        for (entry, cells) in self.pool_by_key()? {
            if cells.len() == n {
                out.push(entry);
            } else {
                tracing::warn!(
                    key = %entry.uid,
                    bits = entry.bits,
                    "skipping a key that is in the pool of only some cells ({}), or whose \
                     public key they disagree on; `keyfrag pool list` shows it",
                    cells.join(", ")
                );
            }
        }
        Ok(out)
    }

    /// The keys in the pool of some cells but not of all (see the module docs), with the
    /// cells that hold them pooled: what `pool_list` skips.
    pub fn pool_stranded(&self) -> Result<Vec<(PoolEntry, Vec<String>)>> {
        let n = self.cell_count();
        Ok(self
            .pool_by_key()?
            .into_iter()
            .filter(|(_, cells)| cells.len() != n)
            .collect())
    }

    /// Every key in some cell's pool, in uid order, with the cells holding it pooled.
    fn pool_by_key(&self) -> Result<Vec<(PoolEntry, Vec<String>)>> {
        let t = self.transport()?;
        let all = t.runtime.block_on(join_all(
            t.cells
                .iter()
                .map(|c| c.call::<Ack, PoolList>(get("keys/pool"))),
        ));
        // Keyed by the whole entry: a cell reporting another public key for a uid counts
        // as not holding it, so the key is skipped rather than handed out.
        // Entries order by uid first.
        let mut seen: BTreeMap<PoolEntry, Vec<String>> = BTreeMap::new();
        for (list, cell) in all_ok(all)?.into_iter().zip(&t.cells) {
            for k in list.keys {
                seen.entry(k).or_default().push(cell.name.clone());
            }
        }
        Ok(seen.into_iter().collect())
    }

    /// Take `uid` out of the pool: as a token key, or with `lease_secs` as a session key.
    /// `Ok(false)`: someone else got it (or it is gone). An error after the first cell's claim
    /// means the key was half claimed and is deleted (module docs): take another.
    pub fn claim_pooled(&self, uid: &str, lease_secs: Option<u64>) -> Result<bool> {
        let t = self.transport()?;
        let path = format!("keys/{uid}/claim");
        let body = ClaimRequest { lease_secs };
        // Not idempotent: a retried claim whose first try went through would be refused
        // as already claimed, by ourselves.
        let (first, rest) = t.cells.split_first().expect("a cluster has cells");
        match t
            .runtime
            .block_on(first.call::<_, Ack>(post(&path, &body, None, false)))
        {
            Ok(_) => {}
            Err(e) if matches!(e.kind, ErrorKind::Refused | ErrorKind::KeyNotFound) => {
                tracing::debug!(key = %uid, "pooled key taken by someone else: {}", e.message);
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
        let others = t.runtime.block_on(join_all(
            rest.iter()
                .map(|c| c.call::<_, Ack>(post(&path, &body, None, false))),
        ));
        let Err(e) = all_ok(others) else {
            return Ok(true);
        };
        tracing::error!(
            key = %uid,
            "a pooled key was claimed on cell {} but not on every other cell ({}); it cannot \
             be used or returned to the pool and is deleted",
            first.name,
            e.message
        );
        if let Err(d) = self.delete_key(uid) {
            tracing::warn!(key = %uid, "could not delete a half-claimed key: {}", d.message);
        }
        Err(ClientError::new(
            ErrorKind::Device,
            format!("claiming pooled key {uid}: {}", e.message),
        ))
    }
}
