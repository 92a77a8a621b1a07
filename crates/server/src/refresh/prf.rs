//! The PRF-specific parts of a refresh run (docs/DPRF.md "Refresh"); the run itself — deal,
//! relay, fences, recovery — is the one of RSA keys (`steps`).
//!
//! PREPARE stores the pending share with an empty list of commitments; COMMIT, which sees
//! every party's check and so every pending commitment, fixes the list (in party order)
//! into the pending record before the share is committed, so an epoch is never served
//! without its list.

use keyfrag_core::dprf::Element;
use keyfrag_core::dprf::refresh::{PrfCheck, PrfDeal, check_point, checks_match};

use super::steps::Run;
use crate::error::{ApiError, ApiResult};
use crate::prf_record::PrfRecord;
use crate::store::ShareRow;

fn open(run: &Run<'_>, epoch: u64, format: u32, sealed: &[u8]) -> ApiResult<PrfRecord> {
    PrfRecord::open(
        run.state.master_key(),
        run.token,
        run.uid,
        epoch,
        format,
        sealed,
    )
    .map_err(ApiError::internal)
}

/// The pending record (share, no list yet), sealed at the next epoch, and the check payload.
pub(super) fn prepare(
    run: &Run<'_>,
    deal: &PrfDeal,
    deltas: &[&[u8]],
) -> ApiResult<(Vec<u8>, Vec<u8>)> {
    let k = &run.key.key;
    let committed = open(run, k.epoch, k.format, &k.sealed_share)?;
    if committed.index().is_none() {
        return Err(ApiError::conflict(format!(
            "PRF key {} has no commitments fixed; it cannot be refreshed",
            run.uid
        )));
    }
    let pending = deal
        .apply(&committed.share, deltas)
        .map_err(|e| (run.refused)(e.to_string()))?;
    let point = check_point(run.uid, run.session, k.epoch).map_err(ApiError::internal)?;
    let payload = PrfCheck::new(&committed.share, &pending, &point)
        .map_err(ApiError::internal)?
        .to_bytes();
    let record = PrfRecord {
        share: pending,
        commitments: Vec::new(),
    };
    let sealed = record
        .seal(run.state.master_key(), run.token, run.uid, k.epoch + 1)
        .map_err(ApiError::internal)?;
    Ok((sealed, payload))
}

/// Before COMMIT: the checks (in party order) keep the function and the commitments' sum;
/// then the pending record gets the new list (once: a repeated COMMIT finds it there).
pub(super) fn commit(run: &Run<'_>, pending: &ShareRow, checks: &[&[u8]]) -> ApiResult<()> {
    let checks = checks
        .iter()
        .map(|p| PrfCheck::from_bytes(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| (run.refused)(e.to_string()))?;
    let k = &run.key.key;
    let committed = open(run, k.epoch, k.format, &k.sealed_share)?;
    if !checks_match(&checks, &committed.commitments) {
        return Err((run.refused)(
            "the pending shares do not form the same PRF (check sums differ)".into(),
        ));
    }
    let list: Vec<Element> = checks.iter().map(|c| c.commitment).collect();
    let mut record = open(run, pending.epoch, pending.format, &pending.sealed_share)?;
    if record.commitments == list {
        return Ok(());
    }
    if !record.commitments.is_empty() {
        return Err(ApiError::conflict(format!(
            "refresh {} of key {} has another list of commitments here",
            run.session, run.uid
        )));
    }
    record.commitments = list;
    if record.index().is_none() {
        return Err((run.refused)(
            "this cell's pending commitment is not among the checks".into(),
        ));
    }
    let sealed = record
        .seal(run.state.master_key(), run.token, run.uid, pending.epoch)
        .map_err(ApiError::internal)?;
    let replaced = run.state.store().replace_share(
        run.token,
        run.uid,
        pending.epoch,
        &pending.sealed_share,
        &sealed,
    )?;
    if !replaced {
        return Err(ApiError::conflict(format!(
            "refresh {} of key {} changed on this cell during COMMIT",
            run.session, run.uid
        )));
    }
    Ok(())
}
