//! Private-key partials at one epoch (docs/REFRESH.md "Epochs").
//!
//! Every request of one operation names the same epoch, and a combined result only ever
//! comes from partials that all carry it. The epoch named is the last one every cell served
//! for the key; the first time, none is named and each cell answers at its committed epoch.
//! When a cell no longer serves the named epoch (a refresh was finalized), or the cells
//! answered at different epochs (a refresh is mid-commit), nothing is combined: the attempt
//! fails with `EpochMoved` after learning an epoch every cell serves, and the operation runs
//! again.

use futures::future::join_all;
use keyfrag_proto::keys::{KeySummary, RsaPartialRequest, RsaPartialResponse};

use super::{Cluster, all_ok, get, lock, post};
use crate::UserKind;
use crate::error::{ClientError, ErrorKind, Result};

/// Attempts of one operation while its epoch moves. A refresh moves it at most twice (COMMIT,
/// FINALIZE), so this leaves room for refreshes back to back.
pub const MAX_EPOCH_ATTEMPTS: usize = 8;

/// Every cell's partial on one input, all at `epoch`, in cell order.
#[derive(Clone, Debug)]
pub struct Partials {
    pub epoch: u64,
    pub cells: Vec<RsaPartialResponse>,
}

impl Partials {
    pub fn outputs(&self) -> Vec<Vec<u8>> {
        self.cells.iter().map(|c| c.output.clone()).collect()
    }
}

/// The newest epoch every cell serves, from each cell's (committed, previous) epochs.
pub(crate) fn common_epoch(served: impl IntoIterator<Item = (u64, Option<u64>)>) -> Option<u64> {
    let mut common: Option<Vec<u64>> = None;
    for (current, previous) in served {
        let mine: Vec<u64> = std::iter::once(current).chain(previous).collect();
        common = Some(match common {
            None => mine,
            Some(c) => c.into_iter().filter(|e| mine.contains(e)).collect(),
        });
    }
    common?.into_iter().max()
}

fn moved(message: String) -> ClientError {
    ClientError::new(ErrorKind::EpochMoved, message)
}

impl Cluster {
    /// Every cell's x'^(2dᵢ) on the blinded input, in cell order, all at one epoch (requires
    /// a user login). Re-sent with the same input while a refresh moves the epoch.
    pub fn rsa_partials(&self, uid: &str, blinded_input: &[u8]) -> Result<Vec<Vec<u8>>> {
        Ok(self.rsa_partials_at(uid, blinded_input)?.outputs())
    }

    /// As `rsa_partials`, with the epoch and each cell's answer (compute times included).
    pub fn rsa_partials_at(&self, uid: &str, blinded_input: &[u8]) -> Result<Partials> {
        let mut last = None;
        for _ in 0..MAX_EPOCH_ATTEMPTS {
            match self.rsa_partials_once(uid, blinded_input) {
                Err(e) if e.kind == ErrorKind::EpochMoved => last = Some(e),
                other => return other,
            }
        }
        let why = last.map(|e| e.message).unwrap_or_default();
        Err(ClientError::new(
            ErrorKind::Device,
            format!("key {uid}: its epoch kept moving over {MAX_EPOCH_ATTEMPTS} attempts ({why})"),
        ))
    }

    /// One attempt at one epoch: every cell's partial, or `EpochMoved` (nothing combined; the
    /// next attempt names an epoch every cell serves).
    pub fn rsa_partials_once(&self, uid: &str, blinded_input: &[u8]) -> Result<Partials> {
        self.rsa_partials_once_beside(uid, blinded_input, || ())
            .map(|(partials, ())| partials)
    }

    /// As `rsa_partials_once`, running `beside` on the calling thread while the cells
    /// compute: the requests are written first, so the caller's own work (its partial, the
    /// inverse of the input, the next blinding pair) costs no latency; the answers wait in
    /// their sockets meanwhile.
    /// `beside` does not run when the attempt fails before any request is sent.
    pub fn rsa_partials_once_beside<R: Send>(
        &self,
        uid: &str,
        blinded_input: &[u8],
        beside: impl FnOnce() -> R + Send,
    ) -> Result<(Partials, R)> {
        let tokens = self.login_tokens(Some(UserKind::User))?;
        let t = self.transport()?;
        let named = lock(&self.epochs).get(uid).copied();
        let path = format!("keys/{uid}/rsa-partial");
        let body = RsaPartialRequest {
            input: blinded_input.to_vec(),
            epoch: named,
        };
        let (all, side) = if t.cells.iter().all(|c| c.has_direct()) {
            // The calling thread writes every request, works beside, then reads the answers
            // (direct.rs): no hand-over to a runtime thread on either way.
            let calls: Vec<_> = tokens
                .iter()
                .map(|tok| post(&path, &body, Some(tok.as_str()), true))
                .collect();
            let pending: Vec<_> = t
                .cells
                .iter()
                .zip(&calls)
                .map(|(c, call)| c.start(call))
                .collect();
            let side = beside();
            let all: Vec<Result<RsaPartialResponse>> =
                pending.into_iter().map(|p| p.finish()).collect();
            (all, side)
        } else {
            let requests = join_all(t.cells.iter().zip(&tokens).map(|(c, tok)| {
                c.call::<_, RsaPartialResponse>(post(&path, &body, Some(tok.as_str()), true))
            }));
            // `join` polls the requests first (they are handed to the connections), then
            // runs `beside` to completion, then waits for the answers.
            t.runtime
                .block_on(futures::future::join(requests, async move { beside() }))
        };
        let is_moved =
            |r: &Result<RsaPartialResponse>| matches!(r, Err(e) if e.kind == ErrorKind::EpochMoved);
        if all.iter().any(is_moved) && all.iter().all(|r| r.is_ok() || is_moved(r)) {
            lock(&self.epochs).remove(uid);
            return Err(moved(format!(
                "key {uid}: epoch {} is no longer served by every cell",
                named.unwrap_or_default()
            )));
        }
        let cells = all_ok(all)?;
        let epoch = cells[0].epoch;
        let served = || cells.iter().map(|c| (c.current_epoch, c.previous_epoch));
        if cells.iter().any(|c| c.epoch != epoch) {
            // Only possible with no epoch named: each cell answered at its committed epoch.
            let mut epochs = lock(&self.epochs);
            match common_epoch(served()) {
                Some(e) => epochs.insert(uid.to_owned(), e),
                None => epochs.remove(uid),
            };
            return Err(moved(format!(
                "key {uid}: the cells answered at different epochs (a refresh is committing)"
            )));
        }
        if named.is_some_and(|n| n != epoch) {
            return Err(ClientError::new(
                ErrorKind::Device,
                format!("key {uid}: a cell answered at epoch {epoch}, not the {named:?} named"),
            ));
        }
        // Next time, name the newest epoch every cell serves (so old ones can be finalized).
        let next = common_epoch(served()).unwrap_or(epoch);
        lock(&self.epochs).insert(uid.to_owned(), next);
        Ok((Partials { epoch, cells }, side))
    }

    /// Every cell's summary of key `uid` — its epochs and refresh state — in cell order.
    pub fn key_status(&self, uid: &str) -> Result<Vec<KeySummary>> {
        let t = self.transport()?;
        let path = format!("keys/{uid}");
        all_ok(t.runtime.block_on(join_all(
            t.cells.iter().map(|c| c.call::<_, KeySummary>(get(&path))),
        )))
    }

    /// The newest epoch every cell serves for `uid` (CKA_KEYFRAG_EPOCH).
    pub fn key_epoch(&self, uid: &str) -> Result<u64> {
        let all = self.key_status(uid)?;
        common_epoch(all.iter().map(|k| (k.epoch, k.previous_epoch))).ok_or_else(|| {
            ClientError::new(
                ErrorKind::Device,
                format!("key {uid}: the cells serve no common epoch"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::common_epoch;

    #[test]
    fn common_epoch_is_the_newest_served_by_all() {
        assert_eq!(common_epoch([(1, None), (1, None)]), Some(1));
        assert_eq!(
            common_epoch([(2, Some(1)), (1, None), (2, Some(1))]),
            Some(1)
        );
        assert_eq!(common_epoch([(2, Some(1)), (2, Some(1))]), Some(2));
        assert_eq!(common_epoch([(2, None), (2, Some(1))]), Some(2));
        assert_eq!(common_epoch([(3, None), (1, None)]), None);
        assert_eq!(common_epoch(std::iter::empty()), None);
    }
}
