//! Customer mode on the cells (issue 4): the operator pins the customer's card per token, the
//! cells name their relay card in /v1/info, start refuses what the pin forbids, and a whole
//! RSA-1024 customer-mode generation runs through three in-process cells' routes with the
//! test as the relay and as the customer (a `RelayedParty` of keyfrag-core).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{KEY_A, TestCell, b64, call, sha256_hex, uid};
use keyfrag_core::customer::{CUSTOMER_PARTY_ID, CustomerSeed};
use keyfrag_core::hash::HashAlg;
use keyfrag_core::keygen::relayed::{RelayedParty, RelayedStep};
use keyfrag_core::keygen::{OsRng, Party};
use keyfrag_core::padding::pkcs1v15;
use keyfrag_core::relay::{Envelope, Kind, PartyCard, PartyKeys, Roster};
use keyfrag_core::rsa_combine::{blind, combine};
use keyfrag_core::rsa_partial::rsa_partial;
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_proto::keygen::{KeygenBody, KeygenDone, encode_batch};
use keyfrag_server::AppState;
use keyfrag_server::keygen::keygen_params;
use keyfrag_server::relay_identity::ClusterFile;
use serde_json::{Value, json};
use tower::ServiceExt;

const OPERATOR: &str = "operator-key-for-tests";
const CELLS: usize = 3;

struct Cluster {
    /// Kept for their temp directories.
    cells: Vec<TestCell>,
    /// Each cell's state with the operator key.
    states: Vec<AppState>,
    /// Cell names, then the customer: the party order.
    ids: Vec<String>,
    cards: Vec<PartyCard>,
}

fn cluster() -> Cluster {
    let names: Vec<String> = (0..CELLS).map(|i| format!("cell-{i}")).collect();
    let seeds: Vec<[u8; 32]> = (0..CELLS).map(|i| [i as u8 + 1; 32]).collect();
    let cards: Vec<PartyCard> = names
        .iter()
        .zip(&seeds)
        .map(|(n, s)| PartyKeys::from_seed(s).card(n).unwrap())
        .collect();
    let toml = ClusterFile::from_cards(&cards).to_toml();
    let op: [u8; 32] = hex::decode(sha256_hex(OPERATOR))
        .unwrap()
        .try_into()
        .unwrap();
    let cells: Vec<TestCell> = names
        .iter()
        .zip(&seeds)
        .map(|(n, s)| TestCell::with_relay(n, *s, &toml))
        .collect();
    let states = cells
        .iter()
        .map(|c| c.state.clone().with_operator_key(op))
        .collect();
    let mut ids = names;
    ids.push(CUSTOMER_PARTY_ID.to_owned());
    Cluster {
        cells,
        states,
        ids,
        cards,
    }
}

fn customer_seed() -> CustomerSeed {
    CustomerSeed::from_bytes([7; 32])
}

fn card_body(seed: &CustomerSeed) -> Value {
    let card = seed.party_keys().card(CUSTOMER_PARTY_ID).unwrap();
    json!({"card": hex::encode(card.to_bytes()), "fingerprint": card.fingerprint()})
}

async fn admin(
    state: &AppState,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    call(state, method, path, Some(OPERATOR), None, body).await
}

const PIN_PATH: &str = "/v1/admin/tokens/a/customer-card";

async fn pin_everywhere(c: &Cluster, seed: &CustomerSeed) {
    for st in &c.states {
        let (s, b) = admin(st, "POST", PIN_PATH, Some(card_body(seed))).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
}

/// A binary POST; the status and the body.
async fn binary(state: &AppState, path: &str, body: Vec<u8>, json: bool) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder()
        .method("POST")
        .uri(path)
        .header("authorization", format!("Bearer {KEY_A}"))
        .header("x-request-id", "test-req");
    req = req.header(
        "content-type",
        if json {
            "application/json"
        } else {
            "application/octet-stream"
        },
    );
    let resp = keyfrag_server::app(state.clone())
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 26)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

fn start_body(session: &str, key_uid: &str, parties: &[String], customer: bool) -> Value {
    json!({"session": session, "key_uid": key_uid, "bits": 1024, "allow_1024": true,
           "parties": parties, "customer": customer})
}

async fn start(state: &AppState, body: &Value) -> (StatusCode, Vec<u8>) {
    binary(
        state,
        "/v1/keygen/start",
        serde_json::to_vec(body).unwrap(),
        true,
    )
    .await
}

fn message(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn pinning_is_operator_only_checked_idempotent_and_permanent() {
    let c = cluster();
    let st = &c.states[0];
    let seed = customer_seed();
    let (s, _) = admin(st, "GET", PIN_PATH, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Only the operator key opens the route.
    for key in [Some(KEY_A), None] {
        let (s, _) = call(st, "POST", PIN_PATH, key, None, Some(card_body(&seed))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // The fingerprint must be the card's; the card must be a customer's; the token must exist.
    let mut wrong = card_body(&seed);
    wrong["fingerprint"] = json!("00".repeat(32));
    let (s, b) = admin(st, "POST", PIN_PATH, Some(wrong)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("fingerprint"),
        "{b}"
    );
    let cell_card = &c.cards[1];
    let as_cell = json!({"card": hex::encode(cell_card.to_bytes()),
                         "fingerprint": cell_card.fingerprint()});
    let (s, b) = admin(st, "POST", PIN_PATH, Some(as_cell)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, _) = admin(
        st,
        "POST",
        "/v1/admin/tokens/nope/customer-card",
        Some(card_body(&seed)),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Pinned once; the same card again changes nothing; another card is a conflict.
    let (s, b) = admin(st, "POST", PIN_PATH, Some(card_body(&seed))).await;
    assert_eq!(
        (s, b["changed"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{b}"
    );
    let (s, b) = admin(st, "POST", PIN_PATH, Some(card_body(&seed))).await;
    assert_eq!(
        (s, b["changed"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{b}"
    );
    let other = CustomerSeed::from_bytes([8; 32]);
    let (s, b) = admin(st, "POST", PIN_PATH, Some(card_body(&other))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, b) = admin(st, "GET", PIN_PATH, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, card_body(&seed));
    // Per token, and in the database (a restart keeps it).
    let (s, _) = admin(st, "GET", "/v1/admin/tokens/b/customer-card", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let reopened = c.cells[0].reopen();
    let pinned = reopened.store().customer_card("a").unwrap().unwrap();
    assert_eq!(
        pinned,
        seed.party_keys()
            .card(CUSTOMER_PARTY_ID)
            .unwrap()
            .to_bytes()
    );
}

#[tokio::test]
async fn info_names_the_cells_relay_card() {
    let c = cluster();
    for (st, card) in c.states.iter().zip(&c.cards) {
        let (s, b) = call(st, "GET", "/v1/info", Some(KEY_A), None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b["relay_card"], json!(hex::encode(card.to_bytes())));
    }
    let plain = TestCell::new();
    let (_, b) = plain.a("GET", "/v1/info", None).await;
    assert_eq!(b["relay_card"], Value::Null);
}

#[tokio::test]
async fn start_follows_the_pin() {
    let c = cluster();
    let st = &c.states[0];
    let cells_only: Vec<String> = c.ids[..CELLS].to_vec();
    // No card pinned: customer mode is refused with the fix named.
    let (s, b) = start(st, &start_body(&uid(1), &uid(9), &c.ids, true)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(
        message(&b).contains("keyfrag customer-fragment pin"),
        "{}",
        message(&b)
    );
    pin_everywhere(&c, &customer_seed()).await;
    // Pinned: a cells-only generation is refused.
    let (s, b) = start(st, &start_body(&uid(2), &uid(9), &cells_only, false)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(message(&b).contains("customer mode"), "{}", message(&b));
    // The customer must be the last party, under its own id.
    let mut mallory = cells_only.clone();
    mallory.push("mallory".into());
    let mut misplaced = cells_only.clone();
    misplaced.insert(1, CUSTOMER_PARTY_ID.into());
    for parties in [mallory, misplaced] {
        let (s, b) = start(st, &start_body(&uid(3), &uid(9), &parties, true)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{}", message(&b));
    }
    // And then it starts: a batch of sealed envelopes for the other cells.
    let (s, b) = start(st, &start_body(&uid(4), &uid(9), &c.ids, true)).await;
    assert_eq!(s, StatusCode::OK, "{}", message(&b));
    let KeygenBody::Batch(envs) = KeygenBody::from_bytes(&b).unwrap() else {
        panic!("start answers a batch");
    };
    assert!(!envs.is_empty());
    let (s, _) = binary(
        st,
        &format!("/v1/keygen/{}/abort", uid(4)),
        Vec::new(),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}

/// Receiver index → envelopes for the next wave.
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

/// The cells' shares signing, through the partial route, with `c`'s partial or without.
async fn sign(c: &Cluster, done: &KeygenDone, key_uid: &str, with_c: bool) -> bool {
    let public = RsaPublic::new(&done.modulus, &done.public_exponent).unwrap();
    let h = HashAlg::Sha256.digest(b"keyfrag: customer-mode key through the cells");
    let em = pkcs1v15::sign_pad(&HashAlg::Sha256.digest_info(&h), public.size()).unwrap();
    let blinded = blind(&public, &em).unwrap();
    let mut partials = Vec::new();
    for cell in &c.cells {
        let user = cell.login("user", common::USER_PIN).await.unwrap();
        let (s, b) = cell
            .call(
                "POST",
                &format!("/v1/keys/{key_uid}/rsa-partial"),
                Some(KEY_A),
                Some(&user),
                Some(json!({"input": b64(&blinded.input)})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        partials.push(keyfrag_proto::b64::decode(b["output"].as_str().unwrap()).unwrap());
    }
    if with_c {
        let customer = customer_seed().rsa_share(key_uid, 1024).unwrap();
        partials.push(rsa_partial(&done.modulus, &blinded.input, &customer).unwrap());
    }
    let Ok(sig) = combine(&public, &blinded, &partials) else {
        return false;
    };
    let pk = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&done.modulus),
        rsa::BoxedUint::from(65537u64),
    )
    .unwrap();
    pk.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &h, sig.expose())
        .is_ok()
}

#[tokio::test]
async fn customer_mode_generation_through_three_cells() {
    let c = cluster();
    pin_everywhere(&c, &customer_seed()).await;
    for cell in &c.cells {
        cell.init_token().await;
    }
    let (session, key_uid) = (uid(0x21), uid(0x42));
    let session_bytes: [u8; 16] = hex::decode(&session).unwrap().try_into().unwrap();
    let seed = customer_seed();
    let mut roster_cards = c.cards.clone();
    roster_cards.push(seed.party_keys().card(CUSTOMER_PARTY_ID).unwrap());
    let n = c.ids.len();
    let party = Party::new_customer(
        n,
        keygen_params(session_bytes, 1024, true),
        OsRng,
        seed.rsa_share(&key_uid, 1024).unwrap(),
    )
    .unwrap();
    let mut customer = RelayedParty::new(
        party,
        Arc::new(seed.party_keys()),
        CUSTOMER_PARTY_ID,
        c.ids.clone(),
        Roster::from_cards(roster_cards).unwrap(),
        &key_uid,
        &session,
    );

    let mut inbox = BTreeMap::new();
    let body = start_body(&session, &key_uid, &c.ids, true);
    for st in &c.states {
        let (s, b) = start(st, &body).await;
        assert_eq!(s, StatusCode::OK, "{}", message(&b));
        let KeygenBody::Batch(envs) = KeygenBody::from_bytes(&b).unwrap() else {
            panic!("start answers a batch");
        };
        route(&c.ids, envs, &mut inbox);
    }
    route(&c.ids, customer.start().unwrap(), &mut inbox);

    let mut done: Vec<Option<KeygenDone>> = vec![None; CELLS];
    let mut customer_done = false;
    let mut silent_cell_steps = 0;
    let step_path = format!("/v1/keygen/{session}/step");
    while !inbox.is_empty() {
        let mut next = BTreeMap::new();
        for (j, envs) in std::mem::take(&mut inbox) {
            if j == CELLS {
                match customer.step(envs).unwrap() {
                    RelayedStep::Send(out) => route(&c.ids, out, &mut next),
                    RelayedStep::Done(share) => {
                        assert_eq!(share.share, seed.rsa_share(&key_uid, 1024).unwrap());
                        customer_done = true;
                    }
                }
                continue;
            }
            let (s, b) = binary(&c.states[j], &step_path, encode_batch(&envs), false).await;
            assert_eq!(s, StatusCode::OK, "{}", message(&b));
            match KeygenBody::from_bytes(&b).unwrap() {
                KeygenBody::Batch(out) => {
                    silent_cell_steps += usize::from(out.is_empty());
                    route(&c.ids, out, &mut next);
                }
                KeygenBody::Done(d) => done[j] = Some(d),
            }
        }
        inbox = next;
    }
    assert!(customer_done);
    // A cell's step may answer an empty batch in customer mode (it advanced and waits).
    assert!(silent_cell_steps > 0);
    let done: Vec<KeygenDone> = done.into_iter().map(|d| d.expect("cell done")).collect();
    let mut hashes: Vec<[u8; 32]> = done.iter().map(|d| d.transcript_hash).collect();
    hashes.push(customer.transcript_hash());
    customer.check_echo(&hashes).unwrap();
    for d in &done {
        assert_eq!(d.modulus, done[0].modulus);
    }
    let commit = json!({"transcript_hashes": hashes.iter().map(hex::encode).collect::<Vec<_>>()});
    for st in &c.states {
        let (s, b) = binary(
            st,
            &format!("/v1/keygen/{session}/commit"),
            serde_json::to_vec(&commit).unwrap(),
            true,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{}", message(&b));
    }
    assert!(
        sign(&c, &done[0], &key_uid, true).await,
        "cells + c do not sign"
    );
    assert!(
        !sign(&c, &done[0], &key_uid, false).await,
        "the cells alone signed"
    );
}
