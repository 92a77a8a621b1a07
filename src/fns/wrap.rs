//! C_WrapKey and C_UnwrapKey with CKM_AES_KEY_WRAP (RFC 3394) and CKM_AES_KEY_WRAP_PAD
//! (RFC 5649) under a secret (AES) key's data key.
//!
//! Wrapping: PKCS#11 wraps only keys with CKA_EXTRACTABLE true, and no keyfrag key is: RSA
//! private keys exist only as fragments and secret keys only as PRF shares. So C_WrapKey
//! checks its arguments and answers CKR_KEY_UNEXTRACTABLE (CKR_KEY_NOT_WRAPPABLE for objects
//! that are not secret or private keys); the key material is never looked for.
//!
//! Unwrapping: an RSA private key (PKCS#8 inside the wrap) is split into fragments on the way
//! in by the import path, never stored whole. An AES or HMAC key cannot be unwrapped: a given
//! key cannot become the output of the cells' PRF (CKR_TEMPLATE_INCONSISTENT, logged).

use std::sync::Arc;

use cryptoki_sys::*;

use super::object::{check_access, create};
use super::secret::{self, SecretKey};
use crate::error::{CkError, Result, err};
use crate::export::api_function;
use crate::ffi;
use crate::mechanism::aes_kw::{self, Kw};
use crate::mechanism::{self, params};
use crate::object::attr::{self, Attribute};
use crate::object::{Object, policy, unwrapped};
use crate::state::{self, Slot};

api_function!(C_WrapKey(session: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM, wrapping_key: CK_OBJECT_HANDLE, key: CK_OBJECT_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => wrap_key);
api_function!(C_UnwrapKey(session: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM, unwrapping_key: CK_OBJECT_HANDLE, wrapped: *mut CK_BYTE, wrapped_len: CK_ULONG, template: *mut CK_ATTRIBUTE, count: CK_ULONG, out: *mut CK_OBJECT_HANDLE) => unwrap_key);

/// The errors of one side (wrapping or unwrapping key).
struct Codes {
    handle: CK_RV,
    type_: CK_RV,
    usage: CK_ATTRIBUTE_TYPE,
}

const WRAPPING: Codes = Codes {
    handle: CKR_WRAPPING_KEY_HANDLE_INVALID,
    type_: CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
    usage: CKA_WRAP,
};
const UNWRAPPING: Codes = Codes {
    handle: CKR_UNWRAPPING_KEY_HANDLE_INVALID,
    type_: CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
    usage: CKA_UNWRAP,
};

/// The key-wrap mode of `mech`, offered by the token for `flag` (CKF_WRAP / CKF_UNWRAP).
fn mode(slot: &Slot, mech: CK_MECHANISM_TYPE, flag: CK_FLAGS) -> Result<Kw> {
    if mechanism::entry(&slot.policy, mech)?.flags & flag == 0 {
        return Err(err(CKR_MECHANISM_INVALID));
    }
    Kw::of(mech).ok_or(err(CKR_MECHANISM_INVALID))
}

/// The AES key that wraps or unwraps: visible, an AES secret key of ours, permitted.
fn kek(
    slot: &Slot,
    handle: CK_OBJECT_HANDLE,
    mech: CK_MECHANISM_TYPE,
    c: &Codes,
) -> Result<Arc<Object>> {
    let k = slot.visible_object(handle).map_err(|e| {
        if e.rv() == CKR_OBJECT_HANDLE_INVALID {
            err(c.handle)
        } else {
            e
        }
    })?;
    if k.class() != CKO_SECRET_KEY || k.ulong(CKA_KEY_TYPE) != Some(CKK_AES) || k.key_uid.is_none()
    {
        return Err(err(c.type_));
    }
    if !slot.user_logged_in() {
        return Err(err(CKR_USER_NOT_LOGGED_IN));
    }
    if k.bool(c.usage) != Some(true) {
        return Err(err(CKR_KEY_FUNCTION_NOT_PERMITTED));
    }
    if !k.allows(mech) {
        return Err(err(CKR_MECHANISM_INVALID));
    }
    Ok(k)
}

fn wrap_key(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    wrapping_key: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    _out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> Result<()> {
    state::check_session(session)?;
    let mech = params::parse(mech)?;
    if out_len.is_null() {
        return Err(err(CKR_ARGUMENTS_BAD));
    }
    state::with_state(|st| {
        let (_, slot) = st.session_slot(session)?;
        mode(slot, mech.ty, CKF_WRAP)?;
        kek(slot, wrapping_key, mech.ty, &WRAPPING)?;
        let k = slot.visible_object(key).map_err(super::key_handle_error)?;
        if !matches!(k.class(), CKO_SECRET_KEY | CKO_PRIVATE_KEY) {
            return Err(err(CKR_KEY_NOT_WRAPPABLE));
        }
        if k.bool(CKA_EXTRACTABLE) != Some(true) {
            tracing::debug!("C_WrapKey: keyfrag keys are never extractable");
            return Err(err(CKR_KEY_UNEXTRACTABLE));
        }
        // Unreachable with the policy table (CKA_EXTRACTABLE can only go to false), kept so
        // that a future extractable key is refused rather than wrapped without its material.
        tracing::error!("C_WrapKey: an extractable key has no material to wrap");
        Err(err(CKR_KEY_UNEXTRACTABLE))
    })
}

/// Refuse before any round trip what an unwrap cannot create.
fn check_unwrap_template(template: &[Attribute]) -> Result<()> {
    let class = attr::find(template, CKA_CLASS)
        .ok_or_else(|| {
            tracing::warn!("C_UnwrapKey: the template lacks CKA_CLASS");
            err(CKR_TEMPLATE_INCOMPLETE)
        })?
        .as_ulong()?;
    match class {
        CKO_PRIVATE_KEY => {}
        CKO_SECRET_KEY => {
            tracing::warn!(
                "C_UnwrapKey: secret keys cannot be unwrapped: keyfrag's secret keys are PRF \
                 keys shared by the cells, and a given AES or HMAC key cannot become PRF \
                 shares; generate one with C_GenerateKey"
            );
            return Err(err(CKR_TEMPLATE_INCONSISTENT));
        }
        _ => {
            tracing::warn!(class, "C_UnwrapKey: only RSA private keys can be unwrapped");
            return Err(err(CKR_TEMPLATE_INCONSISTENT));
        }
    }
    for a in template {
        if a.ty == CKA_MODULUS
            || a.ty == CKA_PUBLIC_EXPONENT
            || policy::is_sensitive(CKO_PRIVATE_KEY, a.ty)
        {
            tracing::warn!(
                attribute = a.ty,
                "C_UnwrapKey: key material comes from the wrapped key, not the template"
            );
            return Err(err(CKR_TEMPLATE_INCONSISTENT));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)] // the C signature
fn unwrap_key(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    unwrapping_key: CK_OBJECT_HANDLE,
    wrapped: *mut CK_BYTE,
    wrapped_len: CK_ULONG,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    out: *mut CK_OBJECT_HANDLE,
) -> Result<()> {
    state::check_session(session)?;
    let mech = params::parse(mech)?;
    let wrapped = ffi::in_slice(wrapped, wrapped_len)?;
    let mut template = ffi::parse_template(template, count)?;
    if out.is_null() {
        return Err(err(CKR_ARGUMENTS_BAD));
    }
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        let kw = mode(slot, mech.ty, CKF_UNWRAP)?;
        let kek = kek(slot, unwrapping_key, mech.ty, &UNWRAPPING)?;
        check_unwrap_template(&template)?;
        let token = attr::find(&template, CKA_TOKEN)
            .map(|a| a.as_bool())
            .transpose()?
            .unwrap_or(false);
        check_access(&sess, slot, token, true)?;
        let dk = secret::data_key(slot, &SecretKey::of(&kek)?)?;
        let der = aes_kw::unwrap(&dk, kw, wrapped)?;
        template.extend(unwrapped::rsa_attributes(&der)?);
        let h = create(st, &sess, slot, session, &template).inspect_err(|e: &CkError| {
            tracing::warn!("C_UnwrapKey: the unwrapped key was not stored: {e}");
        })?;
        ffi::write_out(out, h)
    })
}
