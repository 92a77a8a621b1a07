//! The wave router: which envelope goes to which party, by its cleartext header only.
//!
//! Everything the parties produce in wave w is delivered, grouped by receiver, in wave w + 1
//! (a broadcast, receiver "", to every other party). In customer mode a party may send nothing
//! in a wave (it waits some rounds for the others), so only parties with a non-empty inbox are
//! stepped; in cells-only mode every cell sends in every round, and the relay insists on it
//! (`strict`), as it always did.

use keyfrag_core::relay::Envelope;

use super::device;
use crate::error::Result;

/// What one party produced in a wave.
pub(super) enum Output {
    /// Sealed envelopes for the next wave (possibly none, in customer mode).
    Send(Vec<Vec<u8>>),
    /// The party finished: its public result.
    Done(Finished),
}

/// A party's public result: the key it computed and its transcript hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Finished {
    pub(super) modulus: Vec<u8>,
    pub(super) public_exponent: Vec<u8>,
    pub(super) transcript_hash: [u8; 32],
}

/// Cells-only rules (the relay's checks before customer mode existed, with their messages):
/// every cell sends in every round, and all finish together.
pub(super) fn check_strict(parties: &[String], outputs: &[Option<Output>]) -> Result<()> {
    let finished: Vec<&str> = outputs
        .iter()
        .zip(parties)
        .filter(|(o, _)| matches!(o, Some(Output::Done(_))))
        .map(|(_, n)| n.as_str())
        .collect();
    if !finished.is_empty() && finished.len() < parties.len() {
        return Err(device(format!(
            "cells out of step: only {} finished the key generation",
            finished.join(", ")
        )));
    }
    for (o, name) in outputs.iter().zip(parties) {
        if matches!(o, Some(Output::Send(envs)) if envs.is_empty()) {
            return Err(device(format!(
                "cell {name} sent no messages for the next round"
            )));
        }
    }
    Ok(())
}

/// Deliver every envelope to its receiver by its cleartext header. The header is checked only
/// for routing (sender and session must be the producing party's); the parties authenticate
/// everything. `sends` holds (party index, its envelopes).
pub(super) fn route(
    parties: &[String],
    session: &str,
    sends: Vec<(usize, Vec<Vec<u8>>)>,
) -> Result<Vec<Vec<Vec<u8>>>> {
    let mut inboxes = vec![Vec::new(); parties.len()];
    for (from, batch) in sends {
        let name = &parties[from];
        for bytes in batch {
            let env = Envelope::from_bytes(&bytes)
                .map_err(|e| device(format!("party {name} sent an unreadable envelope: {e}")))?;
            let h = env.header();
            if h.sender != *name || h.session_id != session {
                return Err(device(format!(
                    "party {name} sent an envelope of another sender or session"
                )));
            }
            if h.receiver.is_empty() {
                for (j, inbox) in inboxes.iter_mut().enumerate() {
                    if j != from {
                        inbox.push(bytes.clone());
                    }
                }
            } else {
                let j = parties
                    .iter()
                    .position(|n| *n == h.receiver)
                    .filter(|&j| j != from)
                    .ok_or_else(|| {
                        device(format!("party {name} addressed an envelope to a non-peer"))
                    })?;
                inboxes[j].push(bytes);
            }
        }
    }
    Ok(inboxes)
}

#[cfg(test)]
mod tests {
    use keyfrag_core::relay::{Context, PartyKeys, Protocol, Roster, broadcast, seal};

    use super::*;

    fn names() -> Vec<String> {
        ["cell-a", "cell-b", "cell-c", "customer"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn broadcasts_reach_every_other_party_and_sealed_ones_their_receiver() {
        let session = "00112233445566778899aabbccddeeff";
        let ctx = Context::new(Protocol::RsaKeygen, "uid", session, 0, 3);
        let a = PartyKeys::from_seed(&[1; 32]);
        let c = PartyKeys::from_seed(&[4; 32]);
        let roster = Roster::from_cards([c.card("customer").unwrap()]).unwrap();
        let b = broadcast(&a, "cell-a", &ctx, b"x").unwrap().to_bytes();
        let to_c = seal(&a, "cell-a", roster.get("customer").unwrap(), &ctx, b"y")
            .unwrap()
            .to_bytes();
        let inboxes = route(&names(), session, vec![(0, vec![b.clone(), to_c.clone()])]).unwrap();
        assert!(inboxes[0].is_empty());
        assert_eq!(inboxes[1], vec![b.clone()]);
        assert_eq!(inboxes[2], vec![b.clone()]);
        assert_eq!(inboxes[3], vec![b.clone(), to_c]);
        // The producing party must be the header's sender, in this session.
        let e = route(&names(), session, vec![(1, vec![b.clone()])]).unwrap_err();
        assert!(e.message.contains("cell-b"), "{}", e.message);
        let e = route(&names(), "ff", vec![(0, vec![b])]).unwrap_err();
        assert!(e.message.contains("session"), "{}", e.message);
    }

    #[test]
    fn strict_mode_keeps_the_cells_only_rules() {
        let parties = names()[..3].to_vec();
        let done = || {
            Some(Output::Done(Finished {
                modulus: vec![1],
                public_exponent: vec![3],
                transcript_hash: [0; 32],
            }))
        };
        let e = check_strict(
            &parties,
            &[done(), Some(Output::Send(vec![vec![1]])), done()],
        )
        .unwrap_err();
        assert!(e.message.contains("out of step: only cell-a, cell-c"));
        let e = check_strict(
            &parties,
            &[
                Some(Output::Send(vec![vec![1]])),
                Some(Output::Send(vec![])),
                Some(Output::Send(vec![vec![1]])),
            ],
        )
        .unwrap_err();
        assert!(e.message.contains("cell-b sent no messages"));
        assert!(check_strict(&parties, &[done(), done(), done()]).is_ok());
    }
}
