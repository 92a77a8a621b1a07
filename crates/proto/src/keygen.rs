//! Distributed RSA generation among the cells (DESIGN.md "RSA generation", "Sealed relay"):
//! `POST /v1/keygen/start` (JSON in, binary out), `POST /v1/keygen/{session}/step` (binary in
//! and out), `POST /v1/keygen/{session}/commit` and `/abort` (JSON).
//!
//! The bulk bodies carry relay envelopes, which the client only routes: they are sealed or
//! signed by the cells, so base64 inside JSON would only cost a third more bytes and a parse.
//! Binary body, content type `application/octet-stream`, big-endian integers:
//!
//! ```text
//! body  = version:u8 kind:u8 payload          (version = KEYGEN_BODY_VERSION)
//! batch = kind 1, count:u32, count × (len:u32 envelope[len])
//! done  = kind 2, len:u16 modulus[len] len:u16 public_exponent[len] transcript_hash[32]
//! ```
//! Parsing is strict: known version and kind, every length within the body, no trailing bytes.

use serde::{Deserialize, Serialize};

/// Format version of the binary keygen bodies.
pub const KEYGEN_BODY_VERSION: u8 = 1;
/// Content type of the binary bodies.
pub const OCTET_STREAM: &str = "application/octet-stream";
/// Largest keygen body (a round of BGW shares for a 4096-bit batch is several MB; the
/// general `MAX_BODY_BYTES` is for JSON control requests).
pub const MAX_KEYGEN_BODY_BYTES: usize = 64 << 20;
/// Most envelopes in one batch (n ≤ 16 parties, a few envelopes per peer and round).
pub const MAX_BATCH_ENVELOPES: usize = 1024;
/// Longest modulus in a `done` body (8192 bits).
const MAX_MODULUS_BYTES: usize = 1024;

const KIND_BATCH: u8 = 1;
const KIND_DONE: u8 = 2;

/// `POST /v1/keygen/start`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeygenStartRequest {
    /// Fresh random session id: 32 lowercase hex digits (16 bytes).
    pub session: String,
    /// The uid the shares will be stored under at commit.
    pub key_uid: String,
    /// 2048, 3072 or 4096; 1024 only with `allow_1024`.
    pub bits: u32,
    /// The token allows RSA-1024 (test suites).
    #[serde(default)]
    pub allow_1024: bool,
    /// Cell names in party order (party index = position); each cell finds itself here.
    pub parties: Vec<String>,
    /// Session keys: the stored shares expire unless renewed.
    #[serde(default)]
    pub lease_secs: Option<u64>,
    /// Customer mode (issue 4): the customer is the last party, named
    /// `keyfrag_core::customer::CUSTOMER_PARTY_ID`, after the cells in `parties`; the cells
    /// accept it only on a token with a pinned customer card.
    #[serde(default)]
    pub customer: bool,
    /// The key goes into the token's pool of pre-generated keys instead of straight to use.
    #[serde(default)]
    pub pooled: bool,
}

/// `POST /v1/keygen/{session}/commit`: every party's transcript hash, in party order, as
/// 64 hex digits. A cell stores its share only if all of them equal its own.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeygenCommitRequest {
    pub transcript_hashes: Vec<String>,
}

/// A cell's public result once its party finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeygenDone {
    /// Big-endian N.
    pub modulus: Vec<u8>,
    /// Big-endian e.
    pub public_exponent: Vec<u8>,
    /// SHA-256 over every broadcast of the session, as this cell absorbed them.
    pub transcript_hash: [u8; 32],
}

/// A binary keygen body: envelopes to relay, or the end of a cell's part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeygenBody {
    Batch(Vec<Vec<u8>>),
    Done(KeygenDone),
}

/// Why a binary body was refused; never quotes the body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed keygen body: {0}")]
pub struct BodyError(pub &'static str);

impl KeygenBody {
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            KeygenBody::Batch(envs) => encode_batch(envs),
            KeygenBody::Done(d) => {
                let mut out =
                    Vec::with_capacity(6 + d.modulus.len() + d.public_exponent.len() + 32);
                out.extend_from_slice(&[KEYGEN_BODY_VERSION, KIND_DONE]);
                for field in [&d.modulus, &d.public_exponent] {
                    out.extend_from_slice(&(field.len() as u16).to_be_bytes());
                    out.extend_from_slice(field);
                }
                out.extend_from_slice(&d.transcript_hash);
                out
            }
        }
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<KeygenBody, BodyError> {
        let mut r = Reader(bytes);
        if r.u8()? != KEYGEN_BODY_VERSION {
            return Err(BodyError("unknown version"));
        }
        let body = match r.u8()? {
            KIND_BATCH => {
                let count = r.u32()? as usize;
                if count > MAX_BATCH_ENVELOPES {
                    return Err(BodyError("too many envelopes"));
                }
                // Allocate by what is actually there, never by the claimed count.
                let mut envs = Vec::with_capacity(count.min(r.0.len() / 4));
                for _ in 0..count {
                    let len = r.u32()? as usize;
                    envs.push(r.take(len)?.to_vec());
                }
                KeygenBody::Batch(envs)
            }
            KIND_DONE => {
                let modulus = r.short()?;
                let public_exponent = r.short()?;
                if modulus.len() > MAX_MODULUS_BYTES || public_exponent.len() > modulus.len() {
                    return Err(BodyError("public key too long"));
                }
                let hash = r.take(32)?;
                KeygenBody::Done(KeygenDone {
                    modulus,
                    public_exponent,
                    transcript_hash: hash.try_into().map_err(|_| BodyError("hash"))?,
                })
            }
            _ => return Err(BodyError("unknown kind")),
        };
        if !r.0.is_empty() {
            return Err(BodyError("trailing bytes"));
        }
        Ok(body)
    }
}

/// A batch body, straight from borrowed envelopes (the client relays without copying twice).
pub fn encode_batch<E: AsRef<[u8]>>(envs: &[E]) -> Vec<u8> {
    let total: usize = envs.iter().map(|e| e.as_ref().len() + 4).sum();
    let mut out = Vec::with_capacity(6 + total);
    out.extend_from_slice(&[KEYGEN_BODY_VERSION, KIND_BATCH]);
    out.extend_from_slice(&(envs.len() as u32).to_be_bytes());
    for e in envs {
        out.extend_from_slice(&(e.as_ref().len() as u32).to_be_bytes());
        out.extend_from_slice(e.as_ref());
    }
    out
}

/// Bounds-checked sequential reads.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BodyError> {
        if self.0.len() < n {
            return Err(BodyError("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, BodyError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, BodyError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn short(&mut self) -> Result<Vec<u8>, BodyError> {
        let b = self.take(2)?;
        let len = u16::from_be_bytes([b[0], b[1]]) as usize;
        Ok(self.take(len)?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let batch = KeygenBody::Batch(vec![vec![1, 2, 3], vec![], vec![9; 300]]);
        assert_eq!(KeygenBody::from_bytes(&batch.to_bytes()).unwrap(), batch);
        let done = KeygenBody::Done(KeygenDone {
            modulus: vec![0xc5; 128],
            public_exponent: vec![1, 0, 1],
            transcript_hash: [7; 32],
        });
        assert_eq!(KeygenBody::from_bytes(&done.to_bytes()).unwrap(), done);
        assert_eq!(
            KeygenBody::from_bytes(&encode_batch::<Vec<u8>>(&[])).unwrap(),
            KeygenBody::Batch(vec![])
        );
    }

    #[test]
    fn strict_parsing() {
        let good = KeygenBody::Batch(vec![vec![1, 2, 3]]).to_bytes();
        for cut in 0..good.len() {
            assert!(KeygenBody::from_bytes(&good[..cut]).is_err(), "cut {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            KeygenBody::from_bytes(&trailing),
            Err(BodyError("trailing bytes"))
        );
        let mut version = good.clone();
        version[0] = 2;
        assert!(KeygenBody::from_bytes(&version).is_err());
        let mut kind = good.clone();
        kind[1] = 3;
        assert!(KeygenBody::from_bytes(&kind).is_err());
        // A huge claimed count with no bytes behind it fails without allocating for it.
        let mut huge = vec![KEYGEN_BODY_VERSION, KIND_BATCH];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(KeygenBody::from_bytes(&huge).is_err());
        let mut many = vec![KEYGEN_BODY_VERSION, KIND_BATCH];
        many.extend_from_slice(&1000u32.to_be_bytes());
        many.extend_from_slice(&[0u8; 4000]);
        assert!(
            matches!(KeygenBody::from_bytes(&many), Ok(KeygenBody::Batch(v)) if v.len() == 1000)
        );
    }
}
