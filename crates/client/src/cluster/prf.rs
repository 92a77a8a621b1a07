//! PRF keys on the cells (issue 9, docs/DPRF.md): creation, all or nothing, and the verified
//! oblivious evaluation of F_k with k = Σ kᵢ (+ the customer's share).
//!
//! Evaluation trusts no single cell: every cell reports the key's list of commitments as
//! fixed at creation (or by the refresh that made the epoch), the lists must agree, and each
//! cell's Zᵢ must carry a valid proof against its own entry. A cell whose share changed, that
//! answers for another key, or that returns a wrong Zᵢ, is named and nothing is combined —
//! so a wrong partial can never silently become a data key that later fails to decrypt.

use futures::future::join_all;
use keyfrag_core::dprf::{self, Blinding, Element, PrfShare, Proof};
use keyfrag_proto::prf::{
    PrfCommitmentsRequest, PrfCreateRequest, PrfCreateResponse, PrfEvaluateRequest,
    PrfEvaluateResponse, PrfKeyResponse,
};
use keyfrag_proto::token::Ack;
use zeroize::Zeroizing;

use super::partials::{MAX_EPOCH_ATTEMPTS, common_epoch};
use super::{Cluster, Transport, all_ok, check_agreement, delete, lock, post};
use crate::UserKind;
use crate::error::{ClientError, ErrorKind, Result};

/// Facts about a PRF key the module keeps in the key's object metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrfKeyInfo {
    pub uid: String,
    /// `dprf::commitments_hash` of the list every cell fixed at creation.
    pub commitments_hash: [u8; 32],
    pub epoch: u64,
}

fn device(message: String) -> ClientError {
    ClientError::new(ErrorKind::Device, message)
}

impl Cluster {
    /// Every cell samples its own share for `uid` (no interaction); then every cell is handed
    /// the list of all commitments, in cell order, to fix. All or nothing: on any failure
    /// the shares already created are deleted. `lease_secs` as for RSA session keys (None =
    /// token key).
    pub fn prf_create(&self, uid: &str, lease_secs: Option<u64>) -> Result<PrfKeyInfo> {
        let t = self.transport()?;
        let path = format!("keys/{uid}/prf-create");
        let body = PrfCreateRequest { lease_secs };
        let all = t.runtime.block_on(join_all(
            t.cells
                .iter()
                .map(|c| c.call::<_, PrfCreateResponse>(post(&path, &body, None, true))),
        ));
        let created: Vec<bool> = all.iter().map(|r| r.is_ok()).collect();
        let result = all_ok(all).and_then(|cells| self.prf_fix(&t, uid, &cells));
        if result.is_err() {
            undo_create(&t, uid, &created);
        }
        result
    }

    fn prf_fix(&self, t: &Transport, uid: &str, cells: &[PrfCreateResponse]) -> Result<PrfKeyInfo> {
        let mut list = Vec::with_capacity(cells.len());
        for (cell, answer) in t.cells.iter().zip(cells) {
            let k = Element::from_bytes(&answer.commitment).map_err(|e| {
                device(format!(
                    "cell {}: its PRF commitment is invalid ({e})",
                    cell.name
                ))
            })?;
            if let Some(j) = list.iter().position(|o| *o == k) {
                return Err(device(format!(
                    "cells {} and {} answered the same PRF commitment",
                    t.cells[j].name, cell.name
                )));
            }
            list.push(k);
        }
        let hash = dprf::commitments_hash(uid, &list);
        let body = PrfCommitmentsRequest {
            commitments: list.iter().map(|k| k.to_bytes().to_vec()).collect(),
        };
        let path = format!("keys/{uid}/prf-commitments");
        let all = t.runtime.block_on(join_all(
            t.cells
                .iter()
                .map(|c| c.call::<_, PrfKeyResponse>(post(&path, &body, None, true))),
        ));
        let fixed = all_ok(all)?;
        let want = hex::encode(hash);
        for (cell, answer) in t.cells.iter().zip(&fixed) {
            if answer.commitments_hash != want || answer.epoch != fixed[0].epoch {
                return Err(device(format!(
                    "cell {} fixed other PRF commitments for key {uid}",
                    cell.name
                )));
            }
        }
        Ok(PrfKeyInfo {
            uid: uid.to_owned(),
            commitments_hash: hash,
            epoch: fixed[0].epoch,
        })
    }

    /// 2HashDH evaluation of `input` under k = Σ kᵢ (+ the customer's share when `customer`
    /// is Some): hash to group, blind, fan out in parallel, verify every cell's DLEQ proof
    /// against its commitment (and that all cells report the same commitments), unblind, sum,
    /// finalize. Returns the RFC 9497 Finalize output (64 bytes, SHA-512). Requires a user
    /// login; re-sent with a fresh blind while a refresh moves the epoch.
    pub fn prf_evaluate(
        &self,
        uid: &str,
        input: &[u8],
        customer: Option<&PrfShare>,
    ) -> Result<Zeroizing<[u8; 64]>> {
        Ok(self.prf_evaluation(uid, input, customer)?.output)
    }

    /// The key's epoch and its list of commitments at that epoch, as every cell reports it
    /// (one evaluation of a fixed input, all proofs verified; requires a user login). A
    /// refresh changes every entry and keeps their sum.
    pub fn prf_commitments(&self, uid: &str) -> Result<(u64, Vec<[u8; 32]>)> {
        let e = self.prf_evaluation(uid, b"keyfrag/prf/commitments", None)?;
        Ok((
            e.epoch,
            e.commitments.iter().map(Element::to_bytes).collect(),
        ))
    }

    fn prf_evaluation(
        &self,
        uid: &str,
        input: &[u8],
        customer: Option<&PrfShare>,
    ) -> Result<Evaluation> {
        let mut last = None;
        for _ in 0..MAX_EPOCH_ATTEMPTS {
            match self.prf_evaluate_once(uid, input, customer) {
                Err(e) if e.kind == ErrorKind::EpochMoved => last = Some(e),
                other => return other,
            }
        }
        let why = last.map(|e| e.message).unwrap_or_default();
        Err(device(format!(
            "key {uid}: its epoch kept moving over {MAX_EPOCH_ATTEMPTS} attempts ({why})"
        )))
    }

    fn prf_evaluate_once(
        &self,
        uid: &str,
        input: &[u8],
        customer: Option<&PrfShare>,
    ) -> Result<Evaluation> {
        let tokens = self.login_tokens(Some(UserKind::User))?;
        let t = self.transport()?;
        let blinding = Blinding::new(input)
            .map_err(|e| ClientError::new(ErrorKind::Refused, format!("PRF input: {e}")))?;
        let named = lock(&self.epochs).get(uid).copied();
        let path = format!("keys/{uid}/prf-evaluate");
        let body = PrfEvaluateRequest {
            blinded: blinding.blinded().to_bytes().to_vec(),
            epoch: named,
        };
        let all = t
            .runtime
            .block_on(join_all(t.cells.iter().zip(&tokens).map(|(c, tok)| {
                c.call::<_, PrfEvaluateResponse>(post(&path, &body, Some(tok.as_str()), true))
            })));
        let is_moved = |r: &Result<PrfEvaluateResponse>| matches!(r, Err(e) if e.kind == ErrorKind::EpochMoved);
        if all.iter().any(is_moved) && all.iter().all(|r| r.is_ok() || is_moved(r)) {
            lock(&self.epochs).remove(uid);
            return Err(ClientError::new(
                ErrorKind::EpochMoved,
                format!("key {uid}: epoch {named:?} is no longer served by every cell"),
            ));
        }
        let cells = all_ok(all)?;
        let epoch = cells[0].epoch;
        let served = || cells.iter().map(|c| (c.current_epoch, c.previous_epoch));
        if cells.iter().any(|c| c.epoch != epoch) {
            let mut epochs = lock(&self.epochs);
            match common_epoch(served()) {
                Some(e) => epochs.insert(uid.to_owned(), e),
                None => epochs.remove(uid),
            };
            return Err(ClientError::new(
                ErrorKind::EpochMoved,
                format!(
                    "key {uid}: the cells answered at different epochs (a refresh is committing)"
                ),
            ));
        }
        if named.is_some_and(|n| n != epoch) {
            return Err(device(format!(
                "key {uid}: a cell answered at epoch {epoch}, not the {named:?} named"
            )));
        }
        let (commitments, evaluated) = verified(&t, uid, &blinding, &cells)?;
        let output = blinding
            .finalize(&evaluated, customer)
            .map_err(|e| device(format!("key {uid}: {e}")))?;
        let next = common_epoch(served()).unwrap_or(epoch);
        lock(&self.epochs).insert(uid.to_owned(), next);
        Ok(Evaluation {
            output,
            epoch,
            commitments,
        })
    }
}

/// One verified evaluation: the output and what it was checked against.
struct Evaluation {
    output: Zeroizing<[u8; 64]>,
    epoch: u64,
    commitments: Vec<Element>,
}

/// The key's commitments and every cell's Zᵢ, after checking that the cells agree on the
/// key's commitments, that each holds its own place in them, and that each proof verifies
/// against that place.
fn verified(
    t: &Transport,
    uid: &str,
    blinding: &Blinding,
    cells: &[PrfEvaluateResponse],
) -> Result<(Vec<Element>, Vec<Element>)> {
    check_agreement(t, cells, |c| c.commitments.clone(), "PRF key's commitments")?;
    let names: Vec<&str> = t.cells.iter().map(|c| c.name.as_str()).collect();
    verify_cells(&names, uid, blinding, cells)
}

/// `verified` once the cells agree on the list (`names` in cell order, for the errors).
fn verify_cells(
    names: &[&str],
    uid: &str,
    blinding: &Blinding,
    cells: &[PrfEvaluateResponse],
) -> Result<(Vec<Element>, Vec<Element>)> {
    let list = cells[0]
        .commitments
        .iter()
        .map(|k| Element::from_bytes(k))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            device(format!(
                "key {uid}: the cells report invalid commitments ({e})"
            ))
        })?;
    if list.len() != cells.len() {
        return Err(device(format!(
            "key {uid} has {} commitments on the cells, this token has {} cells",
            list.len(),
            cells.len()
        )));
    }
    let mut seen = vec![false; list.len()];
    let mut out = Vec::with_capacity(cells.len());
    for (name, answer) in names.iter().zip(cells) {
        let index = answer.index as usize;
        if index >= list.len() || std::mem::replace(&mut seen[index], true) {
            return Err(device(format!(
                "cell {name}: claims commitment {index} of key {uid}, which is not its own"
            )));
        }
        let bad = |why: String| {
            let msg = format!("cell {name}: PRF evaluation of key {uid} {why}");
            tracing::error!("{msg}");
            ClientError::new(ErrorKind::VerifyFailed, msg)
        };
        let z =
            Element::from_bytes(&answer.evaluated).map_err(|e| bad(format!("invalid ({e})")))?;
        let proof =
            Proof::from_bytes(&answer.proof).map_err(|e| bad(format!("has a bad proof ({e})")))?;
        dprf::verify(&list[index], blinding.blinded(), &z, &proof)
            .map_err(|_| bad("fails its proof".into()))?;
        out.push(z);
    }
    Ok((list, out))
}

/// Delete the shares a failed creation left (best effort; a failure is logged).
fn undo_create(t: &Transport, uid: &str, created: &[bool]) {
    let path = format!("keys/{uid}");
    let undo = t.runtime.block_on(join_all(
        t.cells
            .iter()
            .zip(created)
            .filter(|(_, ok)| **ok)
            .map(|(c, _)| c.call::<Ack, Ack>(delete(&path))),
    ));
    for u in undo.into_iter().filter_map(|r| r.err()) {
        tracing::warn!("could not remove a partly created PRF key: {}", u.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 3] = ["cell-a", "cell-b", "cell-c"];

    /// Three honest cells' answers to `blinding`, in cell order.
    fn answers(shares: &[PrfShare], blinding: &Blinding) -> Vec<PrfEvaluateResponse> {
        let list: Vec<Vec<u8>> = shares
            .iter()
            .map(|s| s.commitment().unwrap().to_bytes().to_vec())
            .collect();
        shares
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (z, proof) = dprf::evaluate(s, blinding.blinded()).unwrap();
                PrfEvaluateResponse {
                    evaluated: z.to_bytes().to_vec(),
                    proof: proof.to_bytes().to_vec(),
                    index: i as u32,
                    commitments: list.clone(),
                    epoch: 1,
                    current_epoch: 1,
                    previous_epoch: None,
                }
            })
            .collect()
    }

    fn setup() -> (Vec<PrfShare>, Blinding, Vec<PrfEvaluateResponse>) {
        let shares: Vec<PrfShare> = (0..3).map(|_| PrfShare::random().unwrap()).collect();
        let blinding = Blinding::new(b"input").unwrap();
        let cells = answers(&shares, &blinding);
        (shares, blinding, cells)
    }

    #[test]
    fn honest_cells_pass_and_sum_to_the_whole_key() {
        let (shares, blinding, cells) = setup();
        let (list, z) = verify_cells(&NAMES, "uid", &blinding, &cells).unwrap();
        assert_eq!(list.len(), 3);
        let out = blinding.finalize(&z, None).unwrap();
        let whole = dprf::evaluate_whole(&PrfShare::sum(&shares), b"input").unwrap();
        assert_eq!(*out, *whole);
    }

    #[test]
    fn a_wrong_partial_is_refused_and_names_its_cell() {
        let (_, blinding, mut cells) = setup();
        // Cell b answers with cell c's evaluation (and its own proof).
        cells[1].evaluated = cells[2].evaluated.clone();
        let err = verify_cells(&NAMES, "uid", &blinding, &cells).unwrap_err();
        assert_eq!(err.kind, ErrorKind::VerifyFailed);
        assert!(err.message.contains("cell cell-b"), "{}", err.message);

        let (_, blinding, mut cells) = setup();
        cells[2].proof[5] ^= 1;
        let err = verify_cells(&NAMES, "uid", &blinding, &cells).unwrap_err();
        assert_eq!(err.kind, ErrorKind::VerifyFailed);
        assert!(err.message.contains("cell cell-c"), "{}", err.message);

        let (_, blinding, mut cells) = setup();
        cells[0].evaluated = vec![0; 32];
        let err = verify_cells(&NAMES, "uid", &blinding, &cells).unwrap_err();
        assert_eq!(err.kind, ErrorKind::VerifyFailed);
        assert!(err.message.contains("cell cell-a"), "{}", err.message);
    }

    #[test]
    fn a_cell_claiming_another_place_or_a_short_list_is_refused() {
        let (_, blinding, mut cells) = setup();
        cells[2].index = 0;
        let err = verify_cells(&NAMES, "uid", &blinding, &cells).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Device);
        assert!(err.message.contains("cell cell-c"), "{}", err.message);

        let (_, blinding, mut cells) = setup();
        for c in &mut cells {
            c.commitments.pop();
        }
        let err = verify_cells(&NAMES, "uid", &blinding, &cells).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Device);

        // Answers for another blinded element (a replay) fail their proofs.
        let (_, _, cells) = setup();
        let other = Blinding::new(b"input").unwrap();
        let err = verify_cells(&NAMES, "uid", &other, &cells).unwrap_err();
        assert_eq!(err.kind, ErrorKind::VerifyFailed);
    }
}
