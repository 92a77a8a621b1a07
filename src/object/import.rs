//! Creating key objects: an imported RSA private key is split into one additive share per
//! cell, stored on the cells, checked with one private operation, and forgotten. The object
//! keeps only public attributes and the key uid.

use std::collections::BTreeMap;

use cryptoki_sys::*;
use keyfrag_core::random;
use keyfrag_core::rsa_combine;
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_core::rsa_share::{RsaShare, split_exponent, split_exponent_around};

use super::attr::{self, Attribute};
use super::fill_rsa_public;
use crate::error::{CkError, Result, err};
use crate::mechanism::cells;
use crate::object::vendor::CKA_KEYFRAG_CUSTOMER;
use crate::state::Slot;

fn invalid(why: &'static str) -> CkError {
    tracing::warn!("RSA key template rejected: {why}");
    err(CKR_ATTRIBUTE_VALUE_INVALID)
}

/// The largest public key object stored. A public key is only data until an operation uses
/// it, and the size policy is enforced then (C_VerifyInit, C_EncryptInit give
/// CKR_KEY_SIZE_RANGE), so applications may keep e.g. an RSA-8192 CA key on the token, as
/// they can on SoftHSM (the cryptoki crate's suite imports one). The cap bounds the work a
/// template can cause.
const MAX_STORED_PUBLIC_BITS: usize = 16384;

/// The RSA public key named by a key template's CKA_MODULUS and CKA_PUBLIC_EXPONENT, at most
/// MAX_STORED_PUBLIC_BITS long; callers that need the token's size policy apply it.
pub fn rsa_public(attrs: &BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>) -> Result<RsaPublic> {
    if attrs.get(&CKA_KEY_TYPE).and_then(|v| attr::decode_ulong(v)) != Some(CKK_RSA) {
        return Err(invalid("only CKK_RSA keys are supported"));
    }
    let n = attrs
        .get(&CKA_MODULUS)
        .ok_or(err(CKR_TEMPLATE_INCOMPLETE))?;
    let e = attrs
        .get(&CKA_PUBLIC_EXPONENT)
        .ok_or(err(CKR_TEMPLATE_INCOMPLETE))?;
    let key = RsaPublic::new(n, e).map_err(|_| invalid("modulus or public exponent"))?;
    if key.bits() > MAX_STORED_PUBLIC_BITS {
        return Err(invalid("public key larger than the token stores"));
    }
    Ok(key)
}

/// `rsa_public` within the token's size policy: the key of a private key object.
fn rsa_public_in_policy(
    slot: &Slot,
    attrs: &BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>,
) -> Result<RsaPublic> {
    let key = rsa_public(attrs)?;
    slot.policy
        .check_key_size(key.bits())
        .map_err(|_| invalid("key size outside the token's policy"))?;
    Ok(key)
}

/// Import an RSA private key: returns the new key uid. `template` still holds the private
/// exponent (zeroized when the caller drops it); nothing here keeps a copy.
pub fn rsa_private(
    slot: &Slot,
    template: &[Attribute],
    attrs: &mut BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>,
    token: bool,
) -> Result<String> {
    let key = rsa_public_in_policy(slot, attrs)?;
    let d = attr::find(template, CKA_PRIVATE_EXPONENT).ok_or(err(CKR_TEMPLATE_INCOMPLETE))?;
    let uid = random::uid_hex().map_err(CkError::from)?;
    // With a customer fragment the cells get a split of d − c: without c (which only the
    // customer's seed yields) their shares sum to nothing usable.
    let fingerprint = slot.customer.fingerprint_for_new_key()?;
    let customer = match &fingerprint {
        Some(fp) => Some(slot.customer.rsa_share(fp, &uid, key.bits())?),
        None => None,
    };
    let cells = slot.cluster.cell_count();
    let shares = match &customer {
        Some(c) => split_exponent_around(&d.value, key.bits(), cells, c),
        None => split_exponent(&d.value, key.bits(), cells),
    }
    .map_err(|_| invalid("private exponent"))?;
    let lease = if token { None } else { Some(slot.lease_secs()) };
    slot.cluster
        .put_rsa_key(&uid, &key.modulus(), &key.public_exponent(), shares, lease)?;
    // One private operation proves d matches (N, e) before anyone relies on the key.
    if let Err(e) = self_test(slot, &uid, &key, customer.as_ref()) {
        if let Err(de) = slot.cluster.delete_key(&uid) {
            tracing::warn!(
                "could not delete a rejected key's fragments: {}",
                de.message
            );
        }
        return Err(e);
    }
    fill_rsa_public(attrs, CKO_PRIVATE_KEY, &key);
    // Truthful flags: the private exponent can never be read back or wrapped.
    for (ty, v) in [(CKA_SENSITIVE, true), (CKA_EXTRACTABLE, false)] {
        if attrs.get(&ty).and_then(|x| attr::decode_bool(x)) != Some(v) {
            tracing::info!(
                attribute = ty,
                "keyfrag keys are always sensitive and never extractable"
            );
        }
        attrs.insert(ty, attr::encode_bool(v));
    }
    attrs.insert(CKA_ALWAYS_SENSITIVE, attr::encode_bool(false));
    attrs.insert(CKA_NEVER_EXTRACTABLE, attr::encode_bool(false));
    attrs.insert(CKA_LOCAL, attr::encode_bool(false));
    attrs.insert(
        CKA_KEYFRAG_CUSTOMER,
        fingerprint.map_or_else(Vec::new, |fp| fp.to_vec()),
    );
    Ok(uid)
}

fn self_test(slot: &Slot, uid: &str, key: &RsaPublic, customer: Option<&RsaShare>) -> Result<()> {
    if shares_match(slot, uid, key, customer)? {
        Ok(())
    } else {
        Err(invalid("private exponent does not match the public key"))
    }
}

/// One private operation on a random input through the cells, checked against the public
/// key: whether the shares stored under `uid` raise to the d that matches (N, e). Used after
/// an import and after a generation, before any object refers to the key.
pub fn shares_match(
    slot: &Slot,
    uid: &str,
    key: &RsaPublic,
    customer: Option<&RsaShare>,
) -> Result<bool> {
    let mut x = vec![0u8; key.size()];
    random::fill(&mut x[1..]).map_err(CkError::from)?;
    x[1] |= 1;
    let blinded = rsa_combine::blind(key, &x)?;
    let partials = cells::partials(&slot.cluster, uid, key, &blinded.input, customer)?;
    match rsa_combine::combine(key, &blinded, &partials) {
        Ok(_) => Ok(true),
        Err(keyfrag_core::Error::VerifyFailed) => Ok(false),
        Err(_) => {
            tracing::error!("a cell returned a malformed partial while checking a new key");
            Err(err(CKR_DEVICE_ERROR))
        }
    }
}
