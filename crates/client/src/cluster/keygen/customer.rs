//! The customer as a party of its own key's generation (issue 4, DESIGN "Customer fragment"),
//! run here, in the caller's process: its Paillier key and every secret of its part come
//! from fresh OS randomness and never leave this process; it ends holding exactly its
//! long-term share c = PRF(seed, "rsa" ‖ key uid), having dealt Δ = d_customer − c to the
//! cells.
//!
//! It seals to and verifies the cells with their relay cards, read from each cell's
//! `/v1/info` over the token's pinned TLS connections; the cells know the customer by the card
//! the operator pinned on the token (`keyfrag customer-fragment pin`).

use std::sync::Arc;

use futures::future::join_all;
use keyfrag_core::customer::{CUSTOMER_PARTY_ID, CustomerSeed};
use keyfrag_core::keygen::relayed::{RelayedParty, RelayedStep};
use keyfrag_core::keygen::{KeygenParams, OsRng, Party, Stats};
use keyfrag_core::relay::{PartyCard, Roster};
use keyfrag_proto::info::InfoResponse;

use super::super::{Transport, all_ok, get};
use super::device;
use super::waves::{Finished, Output};
use crate::error::Result;

/// Every cell's relay card, in cell order. A cell without one (an older release) or whose
/// card names another party cannot take part.
pub(super) async fn relay_cards(t: &Transport) -> Result<Vec<PartyCard>> {
    let infos = all_ok(
        join_all(
            t.cells
                .iter()
                .map(|c| c.call::<keyfrag_proto::token::Ack, InfoResponse>(get("info"))),
        )
        .await,
    )
    .map_err(|e| device(e.message))?;
    t.cells
        .iter()
        .zip(infos)
        .map(|(cell, info)| {
            let name = &cell.name;
            let hex_card = info.relay_card.ok_or_else(|| {
                device(format!(
                    "cell {name} publishes no relay card in /v1/info: it cannot take part in a \
                     customer-mode generation (it has no relay identity, or runs an older \
                     keyfrag-server)"
                ))
            })?;
            let card = hex::decode(&hex_card)
                .ok()
                .and_then(|b| PartyCard::from_bytes(&b).ok())
                .ok_or_else(|| device(format!("cell {name} publishes a malformed relay card")))?;
            if card.id() != name {
                return Err(device(format!(
                    "cell {name} publishes the relay card of {:?}",
                    card.id()
                )));
            }
            Ok(card)
        })
        .collect()
}

/// The customer's party of one session.
pub(super) struct LocalCustomer {
    party: RelayedParty<OsRng>,
}

/// What the customer needs to join a session.
pub(super) struct Join<'a> {
    pub(super) seed: &'a CustomerSeed,
    pub(super) uid: &'a str,
    pub(super) bits: u32,
    pub(super) params: KeygenParams,
    pub(super) session_hex: &'a str,
    /// Cells' names, then CUSTOMER_PARTY_ID.
    pub(super) parties: Vec<String>,
    pub(super) cards: Vec<PartyCard>,
}

impl LocalCustomer {
    pub(super) fn new(j: Join<'_>) -> Result<LocalCustomer> {
        let keys = j.seed.party_keys();
        let own = keys
            .card(CUSTOMER_PARTY_ID)
            .map_err(|e| device(format!("customer party card: {e}")))?;
        let roster = Roster::from_cards(j.cards.into_iter().chain([own]))
            .map_err(|e| device(format!("customer party roster: {e}")))?;
        let c = j
            .seed
            .rsa_share(j.uid, j.bits as usize)
            .map_err(|e| device(format!("customer share: {e}")))?;
        let party = Party::new_customer(j.parties.len(), j.params, OsRng, c)
            .map_err(|e| device(format!("customer party: {e}")))?;
        Ok(LocalCustomer {
            party: RelayedParty::new(
                party,
                Arc::new(keys),
                CUSTOMER_PARTY_ID,
                j.parties,
                roster,
                j.uid,
                j.session_hex,
            ),
        })
    }

    pub(super) fn start(&mut self) -> Result<Output> {
        self.party
            .start()
            .map(Output::Send)
            .map_err(|e| device(format!("the customer party failed to start: {e}")))
    }

    /// One step: seconds of Paillier arithmetic in the larger rounds.
    pub(super) fn step(&mut self, envelopes: Vec<Vec<u8>>) -> Result<Output> {
        match self.party.step(envelopes) {
            Ok(RelayedStep::Send(out)) => Ok(Output::Send(out)),
            // The share is c itself, which the seed yields again; it is dropped (wiped) here.
            Ok(RelayedStep::Done(share)) => Ok(Output::Done(Finished {
                modulus: share.modulus.clone(),
                public_exponent: share.public_exponent.clone(),
                transcript_hash: self.party.transcript_hash(),
            })),
            Err(e) => Err(device(format!("the customer party aborted: {e}"))),
        }
    }

    /// The customer's own check that every party saw the broadcasts it saw.
    pub(super) fn check_echo(&self, hashes: &[[u8; 32]]) -> Result<()> {
        self.party
            .check_echo(hashes)
            .map_err(|e| device(format!("the customer party refused to commit: {e}")))
    }

    pub(super) fn stats(&self) -> &Stats {
        self.party.stats()
    }
}
