//! What the operation functions need for secret keys: the key's PRF on the cells, its
//! standard data key (from the slot's cache when the token configures one), and one call of
//! a symmetric operation under the two-call and termination rules.

use cryptoki_sys::*;

use super::Step;
use super::op;
use crate::data_key::{self, uid_bytes};
use crate::error::{Result, err};
use crate::ffi::{OutBuf, Written};
use crate::mechanism::prf_cells::CellPrf;
use crate::mechanism::sym::{Bytes, Prf, SymCipher};
use crate::mechanism::{Mechanism, secret};
use crate::object::Object;
use crate::state::{Slot, SymState};

/// The facts of a secret-key object the derivation needs.
pub(crate) struct SecretKey<'a> {
    pub uid: &'a str,
    pub key_type: CK_KEY_TYPE,
    pub len: usize,
    /// The customer fragment's fingerprint (CKA_KEYFRAG_CUSTOMER) if the key needs its share.
    pub customer: Option<&'a [u8]>,
}

impl<'a> SecretKey<'a> {
    pub fn of(key: &'a Object) -> Result<SecretKey<'a>> {
        let uid = key
            .key_uid
            .as_deref()
            .ok_or(err(CKR_KEY_TYPE_INCONSISTENT))?;
        let key_type = key
            .ulong(CKA_KEY_TYPE)
            .ok_or(err(CKR_KEY_TYPE_INCONSISTENT))?;
        let len = key
            .ulong(CKA_VALUE_LEN)
            .and_then(|l| usize::try_from(l).ok())
            .filter(|l| secret::valid_len(key_type, *l))
            .ok_or_else(|| {
                tracing::warn!(object = %key.id, "secret key without a valid CKA_VALUE_LEN");
                err(CKR_KEY_TYPE_INCONSISTENT)
            })?;
        Ok(SecretKey {
            uid,
            key_type,
            len,
            customer: key.customer_fingerprint(),
        })
    }
}

/// The key's PRF on this slot's cells (with the customer's share when it has one).
pub(crate) fn prf(slot: &Slot, key: &SecretKey<'_>) -> Result<Box<dyn Prf>> {
    let customer = match key.customer {
        Some(fp) => Some(slot.customer.prf_share(fp, key.uid)?),
        None => None,
    };
    Ok(Box::new(CellPrf {
        cluster: slot.cluster.clone(),
        uid: key.uid.to_owned(),
        customer,
    }))
}

/// The key's standard data key: cached, or derived from the cells' PRF (then cached if the
/// token allows).
pub(crate) fn data_key(slot: &Slot, key: &SecretKey<'_>) -> Result<Bytes> {
    if let Some(k) = slot.data_keys.get(key.uid, key.len) {
        return Ok(k);
    }
    let prf = prf(slot, key)?;
    let k = data_key::derive(&*prf, key.key_type, key.uid, key.len)?;
    slot.data_keys.put(key.uid, key.len, &k);
    Ok(k)
}

/// A symmetric encryption or decryption with `key` (already checked for the mechanism).
pub(crate) fn cipher(
    slot: &Slot,
    m: &Mechanism,
    key: &Object,
    encrypt: bool,
) -> Result<Box<dyn SymCipher>> {
    let sk = SecretKey::of(key)?;
    if secret::uses_data_key(m.ty) {
        // (The parameters were checked when the mechanism was parsed, before any round trip.)
        secret::cipher(m, data_key(slot, &sk)?, encrypt)
    } else {
        Ok(secret::msg_cipher(
            prf(slot, &sk)?,
            uid_bytes(sk.uid)?,
            encrypt,
        ))
    }
}

/// Which call of a symmetric operation.
pub(crate) enum Call<'a> {
    Single(&'a [u8]),
    Update(&'a [u8]),
    Final,
}

/// One call: the output is computed once and kept until it has been delivered (a length
/// query or a too-small buffer leaves it pending for the repeated call).
pub(crate) fn step(s: &mut SymState, call: Call<'_>, out: &OutBuf) -> Result<Step> {
    let ends = !matches!(call, Call::Update(_));
    if s.pending.is_none() {
        let output = match call {
            Call::Single(data) => {
                op::not_updated(s.updated)?;
                let mut o = s.op.update(data)?;
                o.extend_from_slice(&s.op.finish()?);
                o
            }
            Call::Update(data) => {
                s.updated = true;
                s.op.update(data)?
            }
            Call::Final => s.op.finish()?,
        };
        s.pending = Some(output);
    }
    let written = match &s.pending {
        Some(p) => out.put(p)?,
        None => return Err(err(CKR_GENERAL_ERROR)),
    };
    match written {
        Written::LengthOnly => Ok(Step::Keep),
        Written::Data => {
            s.pending = None;
            Ok(if ends { Step::Done } else { Step::Keep })
        }
    }
}
