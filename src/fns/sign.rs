//! Signing and verification: C_SignInit, C_Sign, C_SignUpdate, C_SignFinal, C_VerifyInit,
//! C_Verify, C_VerifyUpdate, C_VerifyFinal. A signature is a blinded private operation on the
//! cells; verification is local.

use std::sync::Arc;

use cryptoki_sys::*;

use super::{Step, key_handle_error, settle};
use crate::error::{Result, err};
use crate::export::{api_function, not_supported};
use crate::ffi::{self, OutBuf};
use crate::mechanism::cells::CellKey;
use crate::mechanism::{self, params};
use crate::object::Object;
use crate::state::{self, SignState, Slot, State, VerifyState};

api_function!(C_SignInit(session: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) => sign_init);
api_function!(C_Sign(session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG, sig: *mut CK_BYTE, sig_len: *mut CK_ULONG) => sign);
api_function!(C_SignUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG) => sign_update);
api_function!(C_SignFinal(session: CK_SESSION_HANDLE, sig: *mut CK_BYTE, sig_len: *mut CK_ULONG) => sign_final);
api_function!(C_VerifyInit(session: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) => verify_init);
api_function!(C_Verify(session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG, sig: *mut CK_BYTE, sig_len: CK_ULONG) => verify);
api_function!(C_VerifyUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG) => verify_update);
api_function!(C_VerifyFinal(session: CK_SESSION_HANDLE, sig: *mut CK_BYTE, sig_len: CK_ULONG) => verify_final);
not_supported!(C_SignRecoverInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE));
not_supported!(
    C_SignRecover(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG)
);
not_supported!(C_VerifyRecoverInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE));
not_supported!(
    C_VerifyRecover(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG)
);

/// The private key for a private-key operation (sign or decrypt) with `mech`: visible, a
/// private RSA key with fragments, permitted for `usage`, the user logged in.
pub(crate) fn private_key(
    slot: &Slot,
    handle: CK_OBJECT_HANDLE,
    mech: CK_MECHANISM_TYPE,
    usage: CK_ATTRIBUTE_TYPE,
) -> Result<Arc<Object>> {
    let key = slot.visible_object(handle).map_err(key_handle_error)?;
    if key.class() != CKO_PRIVATE_KEY || key.key_uid.is_none() {
        return Err(err(CKR_KEY_TYPE_INCONSISTENT));
    }
    if !slot.user_logged_in() {
        return Err(err(CKR_USER_NOT_LOGGED_IN));
    }
    if key.bool(usage) != Some(true) {
        return Err(err(CKR_KEY_FUNCTION_NOT_PERMITTED));
    }
    if !key.allows(mech) {
        tracing::debug!(
            mechanism = mech,
            "mechanism not in the key's CKA_ALLOWED_MECHANISMS"
        );
        return Err(err(CKR_MECHANISM_INVALID));
    }
    Ok(key)
}

/// The public key for a public-key operation (verify or encrypt).
pub(crate) fn public_key(
    slot: &Slot,
    handle: CK_OBJECT_HANDLE,
    mech: CK_MECHANISM_TYPE,
    usage: CK_ATTRIBUTE_TYPE,
) -> Result<Arc<Object>> {
    let key = slot.visible_object(handle).map_err(key_handle_error)?;
    if key.class() != CKO_PUBLIC_KEY {
        return Err(err(CKR_KEY_TYPE_INCONSISTENT));
    }
    if key.bool(usage) != Some(true) {
        return Err(err(CKR_KEY_FUNCTION_NOT_PERMITTED));
    }
    if !key.allows(mech) {
        return Err(err(CKR_MECHANISM_INVALID));
    }
    Ok(key)
}

/// Run `f` with the cells' private-key operation for `key`.
pub(crate) fn with_cell_key<T>(
    st: &State,
    slot: &Slot,
    key: &Object,
    f: impl FnOnce(&CellKey<'_>) -> Result<T>,
) -> Result<T> {
    let uid = key
        .key_uid
        .as_deref()
        .ok_or(err(CKR_KEY_TYPE_INCONSISTENT))?;
    let public = key.rsa_public()?;
    if !st.threads_allowed {
        slot.renew_inline_if_due();
    }
    f(&CellKey {
        cluster: &slot.cluster,
        uid,
        public: &public,
    })
}

fn sign_init(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    let mech = params::parse(mech)?;
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        let mut ops = sess.ops();
        if ops.sign.is_some() {
            return Err(err(CKR_OPERATION_ACTIVE));
        }
        mechanism::entry(&slot.policy, mech.ty)?;
        let key = private_key(slot, key, mech.ty, CKA_SIGN)?;
        let public = key.rsa_public()?;
        slot.policy.check_key_size(public.bits())?;
        let op = mechanism::sign_init(&slot.policy, &mech, public)?;
        let needs_auth = key.bool(CKA_ALWAYS_AUTHENTICATE) == Some(true);
        ops.sign = Some(SignState {
            op,
            key,
            updated: false,
            needs_auth,
        });
        Ok(())
    })
}

/// Finish a signature under the two-call rule. `data` is the single-part input, if any.
fn finish_sign(
    st: &State,
    slot: &Slot,
    s: &mut SignState,
    data: Option<&[u8]>,
    out: &OutBuf,
) -> Result<Step> {
    let n = s.op.signature_len();
    if out.is_query() {
        out.set_len(n);
        return Ok(Step::Keep);
    }
    if !out.fits(n) {
        out.set_len(n);
        return Err(err(CKR_BUFFER_TOO_SMALL));
    }
    if s.needs_auth {
        return Err(err(CKR_USER_NOT_LOGGED_IN));
    }
    if let Some(d) = data {
        s.op.update(d)?;
    }
    let sig = with_cell_key(st, slot, &s.key, |k| s.op.finish(k))?;
    out.put(&sig)?;
    Ok(Step::Done)
}

fn sign(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> Result<()> {
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        let mut ops = sess.ops();
        let s = ops
            .sign
            .as_mut()
            .ok_or(err(CKR_OPERATION_NOT_INITIALIZED))?;
        let r = (|| {
            if s.updated {
                return Err(err(CKR_OPERATION_ACTIVE));
            }
            let out = OutBuf::new(sig, sig_len)?;
            let data = ffi::in_slice(data, data_len)?;
            finish_sign(st, slot, s, Some(data), &out)
        })();
        settle(&mut ops.sign, r)
    })
}

fn sign_update(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG) -> Result<()> {
    state::with_state(|st| {
        let sess = st.session(session)?;
        let mut ops = sess.ops();
        let s = ops
            .sign
            .as_mut()
            .ok_or(err(CKR_OPERATION_NOT_INITIALIZED))?;
        let r = (|| {
            if !s.op.multipart() {
                return Err(err(CKR_FUNCTION_NOT_SUPPORTED));
            }
            s.op.update(ffi::in_slice(part, part_len)?)?;
            s.updated = true;
            Ok(Step::Keep)
        })();
        settle(&mut ops.sign, r)
    })
}

fn sign_final(session: CK_SESSION_HANDLE, sig: *mut CK_BYTE, sig_len: *mut CK_ULONG) -> Result<()> {
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        let mut ops = sess.ops();
        let s = ops
            .sign
            .as_mut()
            .ok_or(err(CKR_OPERATION_NOT_INITIALIZED))?;
        let r = (|| {
            if !s.op.multipart() {
                return Err(err(CKR_FUNCTION_NOT_SUPPORTED));
            }
            let out = OutBuf::new(sig, sig_len)?;
            finish_sign(st, slot, s, None, &out)
        })();
        settle(&mut ops.sign, r)
    })
}

fn verify_init(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    let mech = params::parse(mech)?;
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        let mut ops = sess.ops();
        if ops.verify.is_some() {
            return Err(err(CKR_OPERATION_ACTIVE));
        }
        mechanism::entry(&slot.policy, mech.ty)?;
        let key = public_key(slot, key, mech.ty, CKA_VERIFY)?;
        let public = key.rsa_public()?;
        slot.policy.check_key_size(public.bits())?;
        let op = mechanism::verify_init(&slot.policy, &mech, public)?;
        ops.verify = Some(VerifyState { op, updated: false });
        Ok(())
    })
}

fn verify(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: CK_ULONG,
) -> Result<()> {
    state::with_state(|st| {
        let sess = st.session(session)?;
        let mut ops = sess.ops();
        let v = ops
            .verify
            .as_mut()
            .ok_or(err(CKR_OPERATION_NOT_INITIALIZED))?;
        let r = (|| {
            if v.updated {
                return Err(err(CKR_OPERATION_ACTIVE));
            }
            let data = ffi::in_slice(data, data_len)?;
            let sig = ffi::in_slice(sig, sig_len)?;
            v.op.update(data)?;
            v.op.finish(sig)?;
            Ok(Step::Done)
        })();
        settle(&mut ops.verify, r)
    })
}

fn verify_update(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG) -> Result<()> {
    state::with_state(|st| {
        let sess = st.session(session)?;
        let mut ops = sess.ops();
        let v = ops
            .verify
            .as_mut()
            .ok_or(err(CKR_OPERATION_NOT_INITIALIZED))?;
        let r = (|| {
            if !v.op.multipart() {
                return Err(err(CKR_FUNCTION_NOT_SUPPORTED));
            }
            v.op.update(ffi::in_slice(part, part_len)?)?;
            v.updated = true;
            Ok(Step::Keep)
        })();
        settle(&mut ops.verify, r)
    })
}

fn verify_final(session: CK_SESSION_HANDLE, sig: *mut CK_BYTE, sig_len: CK_ULONG) -> Result<()> {
    state::with_state(|st| {
        let sess = st.session(session)?;
        let mut ops = sess.ops();
        let v = ops
            .verify
            .as_mut()
            .ok_or(err(CKR_OPERATION_NOT_INITIALIZED))?;
        let r = (|| {
            if !v.op.multipart() {
                return Err(err(CKR_FUNCTION_NOT_SUPPORTED));
            }
            v.op.finish(ffi::in_slice(sig, sig_len)?)?;
            Ok(Step::Done)
        })();
        settle(&mut ops.verify, r)
    })
}
