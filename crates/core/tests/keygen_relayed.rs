//! `RelayedParty` driven by an in-memory wave router: every envelope produced in wave w is
//! delivered, grouped by receiver, in wave w + 1, and only parties with mail are stepped —
//! what the cells' HTTP relay does. Customer mode (3 cells and the customer, RSA-1024 under a
//! Paillier-2048 customer key, the seed of keygen_customer.rs that accepts in its second
//! batch) and cells-only mode.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use keyfrag_core::customer::{CUSTOMER_PARTY_ID, CustomerSeed};
use keyfrag_core::hash::HashAlg;
use keyfrag_core::keygen::relayed::{RelayedParty, RelayedStep};
use keyfrag_core::keygen::{GeneratedShare, KeygenParams, Party, SeededRng};
use keyfrag_core::padding::pkcs1v15;
use keyfrag_core::relay::{Envelope, Kind, PartyKeys, Roster};
use keyfrag_core::rsa_combine::{blind, combine};
use keyfrag_core::rsa_partial::rsa_partial;
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_core::rsa_share::RsaShare;
use rsa::Pkcs1v15Sign;
use rsa::sha2::Sha256;

const CELLS: usize = 3;
const SESSION_HEX: &str = "0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d";
const KEY_UID: &str = "key-uid-1";

fn customer_seed() -> CustomerSeed {
    CustomerSeed::from_bytes([7; 32])
}

fn cell_keys(i: usize) -> PartyKeys {
    PartyKeys::from_seed(&[i as u8 + 1; 32])
}

fn names(customer: bool) -> Vec<String> {
    let mut ids: Vec<String> = (0..CELLS).map(|i| format!("cell-{i}")).collect();
    if customer {
        ids.push(CUSTOMER_PARTY_ID.to_owned());
    }
    ids
}

fn roster(customer: bool) -> Roster {
    let mut cards: Vec<_> = (0..CELLS)
        .map(|i| cell_keys(i).card(&format!("cell-{i}")).unwrap())
        .collect();
    if customer {
        cards.push(
            customer_seed()
                .party_keys()
                .card(CUSTOMER_PARTY_ID)
                .unwrap(),
        );
    }
    Roster::from_cards(cards).unwrap()
}

fn c_share() -> RsaShare {
    customer_seed().rsa_share(KEY_UID, 1024).unwrap()
}

/// Every party of a session, relayed, with its own keys.
fn relayed_parties(seed: u64, customer: bool) -> Vec<RelayedParty<SeededRng>> {
    let mut params = if customer {
        KeygenParams::customer([seed as u8; 16], 1024)
    } else {
        KeygenParams::new([seed as u8; 16], 1024)
    };
    params.batch = 256;
    let ids = names(customer);
    let n = ids.len();
    (0..n)
        .map(|i| {
            let (party, keys) = if customer && i == CELLS {
                let p = Party::new_customer(n, params.clone(), SeededRng::new(seed, i), c_share());
                (p.unwrap(), customer_seed().party_keys())
            } else {
                let p = Party::new(i, n, params.clone(), SeededRng::new(seed, i));
                (p.unwrap(), cell_keys(i))
            };
            RelayedParty::new(
                party,
                Arc::new(keys),
                &ids[i],
                ids.clone(),
                roster(customer),
                KEY_UID,
                SESSION_HEX,
            )
        })
        .collect()
}

/// Receiver index → its envelopes of the next wave.
fn route(ids: &[String], out: Vec<Vec<u8>>, inbox: &mut BTreeMap<usize, Vec<Vec<u8>>>) {
    for bytes in out {
        let env = Envelope::from_bytes(&bytes).unwrap();
        let h = env.header();
        let to: Vec<usize> = match h.kind {
            Kind::Sealed => vec![ids.iter().position(|id| *id == h.receiver).unwrap()],
            Kind::Broadcast => (0..ids.len()).filter(|&j| ids[j] != h.sender).collect(),
        };
        for j in to {
            inbox.entry(j).or_default().push(bytes.clone());
        }
    }
}

struct Run {
    parties: Vec<RelayedParty<SeededRng>>,
    outputs: Vec<GeneratedShare>,
    waves: usize,
    silent_steps: usize,
}

fn drive(mut parties: Vec<RelayedParty<SeededRng>>, customer: bool) -> Run {
    let ids = names(customer);
    let mut inbox = BTreeMap::new();
    for p in parties.iter_mut() {
        route(&ids, p.start().unwrap(), &mut inbox);
    }
    let mut outputs: Vec<Option<GeneratedShare>> = vec![None; ids.len()];
    let (mut waves, mut silent_steps) = (0, 0);
    while !inbox.is_empty() {
        waves += 1;
        let mut next = BTreeMap::new();
        for (j, envs) in std::mem::take(&mut inbox) {
            match parties[j].step(envs).unwrap() {
                RelayedStep::Send(out) => {
                    silent_steps += usize::from(out.is_empty());
                    route(&ids, out, &mut next);
                }
                RelayedStep::Done(share) => outputs[j] = Some(share),
            }
        }
        inbox = next;
    }
    Run {
        outputs: outputs
            .into_iter()
            .map(|o| o.expect("every party done"))
            .collect(),
        parties,
        waves,
        silent_steps,
    }
}

fn customer_run() -> &'static Run {
    static RUN: std::sync::OnceLock<Run> = std::sync::OnceLock::new();
    RUN.get_or_init(|| drive(relayed_parties(13, true), true))
}

fn hashes(run: &Run) -> Vec<[u8; 32]> {
    run.parties.iter().map(|p| p.transcript_hash()).collect()
}

/// Sign with these shares (blind, partials, combine: combine verifies), then check with `rsa`.
fn signs(out: &GeneratedShare, shares: &[RsaShare]) -> bool {
    let public = RsaPublic::new(&out.modulus, &out.public_exponent).unwrap();
    let h = HashAlg::Sha256.digest(b"keyfrag: relayed customer-mode key");
    let em = pkcs1v15::sign_pad(&HashAlg::Sha256.digest_info(&h), public.size()).unwrap();
    let blinded = blind(&public, &em).unwrap();
    let partials: Vec<Vec<u8>> = shares
        .iter()
        .map(|s| rsa_partial(&out.modulus, &blinded.input, s).unwrap())
        .collect();
    let Ok(sig) = combine(&public, &blinded, &partials) else {
        return false;
    };
    let pk = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&out.modulus),
        rsa::BoxedUint::from(65537u64),
    )
    .unwrap();
    pk.verify(Pkcs1v15Sign::new::<Sha256>(), &h, sig.expose())
        .is_ok()
}

#[test]
fn customer_mode_through_the_relay() {
    let run = customer_run();
    // Some steps answered nothing (a party advanced silently), so waves really were sparse.
    assert!(run.silent_steps > 0, "no silent step in customer mode");
    println!(
        "relayed customer mode: {} waves, {} silent steps",
        run.waves, run.silent_steps
    );
    let hashes = hashes(run);
    assert!(hashes.iter().all(|h| *h == hashes[0]), "transcripts differ");
    for p in &run.parties {
        p.check_echo(&hashes).unwrap();
    }
    // A hash that differs, or one too few, is refused by every party.
    let mut wrong = hashes.clone();
    wrong[1][0] ^= 1;
    for p in &run.parties {
        let err = p.check_echo(&wrong).unwrap_err();
        assert!(err.contains("cell-1"), "{err}");
        assert!(p.check_echo(&hashes[..CELLS]).is_err());
    }
    // Everyone agrees on the key; the customer keeps exactly c.
    for o in &run.outputs {
        assert_eq!(o.modulus, run.outputs[0].modulus);
    }
    assert_eq!(run.outputs[CELLS].share, c_share());
    let cells: Vec<RsaShare> = run.outputs[..CELLS]
        .iter()
        .map(|o| o.share.clone())
        .collect();
    let mut with_c = cells.clone();
    with_c.push(c_share());
    assert!(signs(&run.outputs[0], &with_c), "cells + c do not sign");
    assert!(!signs(&run.outputs[0], &cells), "the cells alone signed");
    // A finished party takes no more steps.
    let mut finished = relayed_parties(13, true).swap_remove(0);
    let first = finished.start().unwrap();
    assert!(finished.start().is_err());
    assert!(first.len() >= CELLS - 1);
}

#[test]
fn a_flipped_byte_aborts_the_receiver() {
    let ids = names(true);
    let mut parties = relayed_parties(21, true);
    let mut inbox = BTreeMap::new();
    for p in parties.iter_mut() {
        route(&ids, p.start().unwrap(), &mut inbox);
    }
    // Cell 0 receives sieve deals from the other cells and the customer's broadcast.
    let mut envs = inbox.remove(&0).unwrap();
    assert_eq!(envs.len(), CELLS);
    let last = envs[1].len() - 1;
    envs[1][last] ^= 0x01;
    assert!(parties[0].step(envs.clone()).is_err());
    // Failed for good: even the untouched batch is refused now.
    envs[1][last] ^= 0x01;
    assert!(parties[0].step(envs).is_err());
    // Same for a byte of a broadcast's header (the customer's), at another receiver.
    let mut envs = inbox.remove(&1).unwrap();
    let bcast = envs
        .iter()
        .position(|e| Envelope::from_bytes(e).unwrap().kind() == Kind::Broadcast)
        .unwrap();
    envs[bcast][10] ^= 0x01;
    assert!(parties[1].step(envs).is_err());
    // An incomplete round is refused: cell 2 without the customer's broadcast.
    let mut envs = inbox.remove(&2).unwrap();
    envs.retain(|e| Envelope::from_bytes(e).unwrap().kind() != Kind::Broadcast);
    let err = parties[2].step(envs).unwrap_err();
    assert!(err.contains("incomplete"), "{err}");
}

#[test]
fn cells_only_through_the_relay() {
    let run = drive(relayed_parties(1, false), false);
    // Every party talks in every round of cells-only mode.
    assert_eq!(run.silent_steps, 0);
    let hashes = hashes(&run);
    for p in &run.parties {
        p.check_echo(&hashes).unwrap();
    }
    let shares: Vec<RsaShare> = run.outputs.iter().map(|o| o.share.clone()).collect();
    assert!(signs(&run.outputs[0], &shares));
    assert!(!signs(&run.outputs[0], &shares[..2]));
}

#[test]
fn cells_precompute_once_the_customers_key_is_known() {
    let ids = names(true);
    let mut parties = relayed_parties(22, true);
    let mut inbox = BTreeMap::new();
    for p in parties.iter_mut() {
        route(&ids, p.start().unwrap(), &mut inbox);
    }
    // Before its first step a cell does not know the customer's Paillier key.
    assert_eq!(parties[0].precompute(4), 0);
    let envs = inbox.remove(&0).unwrap();
    assert!(matches!(parties[0].step(envs), Ok(RelayedStep::Send(_))));
    assert_eq!(parties[0].precompute(4), 4);
    assert_eq!(
        parties[0].precompute(0),
        4,
        "0 asks only how many are ready"
    );
    assert_eq!(parties[0].stats().randomisers, 4);
    assert!(parties[0].stats().precompute_ns > 0);
    // The customer has nothing to precompute; nor has a cells-only party.
    assert_eq!(parties[CELLS].precompute(4), 0);
    let mut cells_only = relayed_parties(23, false);
    cells_only[0].start().unwrap();
    assert_eq!(cells_only[0].precompute(4), 0);
}
