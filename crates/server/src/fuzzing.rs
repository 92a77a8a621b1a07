//! Entry points for the fuzz targets in fuzz/ and for their corpus replay in
//! tests/fuzz_replay.rs: the cell's config parser and everything a request body goes through
//! before the store (JSON decoding and its error text, the routes' validation, the binary
//! keygen bodies, relay envelopes). Each takes arbitrary bytes and must not panic.

use std::path::Path;

use keyfrag_core::dprf::PrfShare;
use keyfrag_core::relay::Envelope;
use keyfrag_core::rsa_share::{RsaShare, share_bytes};
use keyfrag_core::secret::SecretBytes;
use keyfrag_proto::keygen::{KeygenBody, KeygenCommitRequest, KeygenStartRequest};
use keyfrag_proto::keys::{LeaseRequest, PutRsaKeyRequest, RsaPartialRequest};
use keyfrag_proto::objects::{StageRequest, TxRequest};
use keyfrag_proto::prf::{PrfCommitmentsRequest, PrfCreateRequest, PrfEvaluateRequest};
use keyfrag_proto::token::{InitPinRequest, InitTokenRequest, LoginRequest, SetPinRequest};
use serde::de::DeserializeOwned;

use crate::config::CellConfig;
use crate::error::ApiError;
use crate::routes::keys::{NewRsaKey, check_lease};
use crate::routes::prf;
use crate::routes::{check_uid, describe_json_error};

/// A cell config file's text.
pub fn cell_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = CellConfig::parse(Path::new("fuzz.toml"), text);
    }
}

/// What `ApiJson` does with a body.
fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(describe_json_error(&e)))
}

/// A 512-bit odd modulus for partials over fuzzed inputs (any odd number will do: the cell
/// computes with whatever modulus it stored).
fn partial_modulus() -> Vec<u8> {
    let mut n = vec![0xa5u8; 64];
    n[0] = 0xc3;
    n[63] |= 1;
    n
}

/// The first byte picks a route; the rest is its JSON body, decoded and then checked as the
/// route checks it before touching the store.
pub fn request_body(data: &[u8]) {
    let Some((&route, body)) = data.split_first() else {
        return;
    };
    match route % 12 {
        0 => {
            let _ = json::<InitTokenRequest>(body);
        }
        1 => {
            let _ = json::<LoginRequest>(body);
        }
        2 => {
            let _ = json::<InitPinRequest>(body);
        }
        3 => {
            let _ = json::<SetPinRequest>(body);
        }
        4 => {
            if let Ok(req) = json::<StageRequest>(body) {
                let _ = crate::routes::objects::validate(&req);
            }
        }
        5 => {
            if let Ok(req) = json::<TxRequest>(body) {
                let _ = check_uid("txid", &req.txid);
            }
        }
        6 => {
            if let Ok(req) = json::<PutRsaKeyRequest>(body) {
                let share = RsaShare {
                    negative: req.share.negative,
                    magnitude: SecretBytes::new(req.share.magnitude.clone()),
                };
                let _ =
                    NewRsaKey::check(&req.modulus, &req.public_exponent, &share, req.lease_secs);
            }
        }
        7 => {
            if let Ok(req) = json::<LeaseRequest>(body) {
                for uid in &req.uids {
                    let _ = check_uid("key uid", uid);
                }
                let _ = check_lease(req.lease_secs);
            }
        }
        8 => {
            if let Ok(req) = json::<RsaPartialRequest>(body) {
                let share = RsaShare {
                    negative: req.epoch.is_some_and(|e| e & 1 == 1),
                    magnitude: SecretBytes::new(vec![0x5a; share_bytes(512)]),
                };
                let _ =
                    keyfrag_core::rsa_partial::rsa_partial(&partial_modulus(), &req.input, &share);
            }
        }
        9 => {
            if let Ok(req) = json::<KeygenStartRequest>(body) {
                let _ = crate::routes::keygen::validate(&req, "cell-1");
            }
        }
        10 => {
            if let Ok(req) = json::<KeygenCommitRequest>(body) {
                for h in &req.transcript_hashes {
                    let mut out = [0u8; 32];
                    let _ = hex::decode_to_slice(h, &mut out);
                }
            }
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(body) {
                let _ = check_uid("key uid", text);
            }
        }
    }
}

/// The PRF routes' bodies (the first byte picks the route), checked as the routes check them;
/// a blinded element that passes is evaluated under a fixed share, as the cell would.
pub fn prf_request_body(data: &[u8]) {
    let Some((&route, body)) = data.split_first() else {
        return;
    };
    match route % 3 {
        0 => {
            if let Ok(req) = json::<PrfCreateRequest>(body) {
                let _ = check_lease(req.lease_secs);
            }
        }
        1 => {
            if let Ok(req) = json::<PrfCommitmentsRequest>(body) {
                let _ = prf::parse_commitments(&req.commitments);
            }
        }
        _ => {
            if let Ok(req) = json::<PrfEvaluateRequest>(body)
                && let Ok(blinded) = prf::parse_blinded(&req.blinded)
            {
                let share = PrfShare::from_bytes(&[7u8; 32]).expect("a canonical scalar");
                let (z, proof) = keyfrag_core::dprf::evaluate(&share, &blinded)
                    .expect("a valid element evaluates");
                let k = share.commitment().expect("non-zero share");
                keyfrag_core::dprf::verify(&k, &blinded, &z, &proof).expect("own proof verifies");
            }
        }
    }
}

/// A binary keygen body (`/v1/keygen/{session}/step`), then each envelope it carries.
pub fn keygen_body(data: &[u8]) {
    let Ok(body) = KeygenBody::from_bytes(data) else {
        return;
    };
    assert_eq!(body.to_bytes(), data, "keygen body does not re-encode");
    if let KeygenBody::Batch(envs) = body {
        for e in envs {
            relay_envelope(&e);
        }
    }
}

/// One relay envelope: strict parsing, and what parses re-encodes to the same bytes.
pub fn relay_envelope(data: &[u8]) {
    if let Ok(env) = Envelope::from_bytes(data) {
        assert_eq!(env.to_bytes(), data, "envelope does not re-encode");
        let _ = env.kind();
        let _ = env.signed_content();
    }
}
