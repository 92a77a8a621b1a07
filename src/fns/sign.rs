//! Signing and verification: C_SignInit, C_Sign, C_SignUpdate, C_SignFinal, C_VerifyInit,
//! C_Verify, C_VerifyUpdate, C_VerifyFinal. A signature is a blinded private operation on the
//! cells; verification is local.

use cryptoki_sys::*;

use super::Step;
use super::op::{self, Field};
use super::secret;
use crate::error::{Result, err};
use crate::export::{api_function, not_supported};
use crate::ffi::{self, OutBuf};
use crate::mechanism::{self, NoCells, cells::CellKey};
use crate::object::Object;
use crate::state::{SignState, Slot, State, VerifyState};

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
    let customer = match key.customer_fingerprint() {
        Some(fp) => Some(slot.customer.rsa_share(fp, uid, public.bits())?),
        None => None,
    };
    f(&CellKey {
        cluster: &slot.cluster,
        uid,
        public: &public,
        customer,
    })
}

const SIGN: Field<SignState> = |o| &mut o.sign;
const VERIFY: Field<VerifyState> = |o| &mut o.verify;

fn sign_init(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    op::init(session, mech, CKF_SIGN, SIGN, |s| {
        if s.is_secret(key) {
            let key = s.secret(key, CKA_SIGN)?;
            let dk = secret::data_key(s.slot, &secret::SecretKey::of(&key)?)?;
            return Ok(SignState {
                op: Box::new(mechanism::secret::mac(s.mech, &dk)?),
                key,
                updated: false,
                needs_auth: false,
            });
        }
        let (key, op, needs_auth) = s.private(key, CKA_SIGN, mechanism::sign_init)?;
        Ok(SignState {
            op,
            key,
            updated: false,
            needs_auth,
        })
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
    if let Some(step) = op::room(out, s.op.signature_len())? {
        return Ok(step);
    }
    if s.needs_auth {
        return Err(err(CKR_USER_NOT_LOGGED_IN));
    }
    if let Some(d) = data {
        s.op.update(d)?;
    }
    let sig = if s.op.holds_key() {
        s.op.finish(&NoCells)?
    } else {
        with_cell_key(st, slot, &s.key, |k| s.op.finish(k))?
    };
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
    op::step_on_slot(session, SIGN, |st, slot, s| {
        op::not_updated(s.updated)?;
        let out = OutBuf::new(sig, sig_len)?;
        let data = ffi::in_slice(data, data_len)?;
        finish_sign(st, slot, s, Some(data), &out)
    })
}

fn sign_update(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG) -> Result<()> {
    op::step(session, SIGN, |s| {
        op::multipart_only(s.op.multipart())?;
        s.op.update(ffi::in_slice(part, part_len)?)?;
        s.updated = true;
        Ok(Step::Keep)
    })
}

fn sign_final(session: CK_SESSION_HANDLE, sig: *mut CK_BYTE, sig_len: *mut CK_ULONG) -> Result<()> {
    op::step_on_slot(session, SIGN, |st, slot, s| {
        op::multipart_only(s.op.multipart())?;
        let out = OutBuf::new(sig, sig_len)?;
        finish_sign(st, slot, s, None, &out)
    })
}

fn verify_init(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    op::init(session, mech, CKF_VERIFY, VERIFY, |s| {
        if s.is_secret(key) {
            let key = s.secret(key, CKA_VERIFY)?;
            let dk = secret::data_key(s.slot, &secret::SecretKey::of(&key)?)?;
            let op = Box::new(mechanism::secret::mac(s.mech, &dk)?);
            return Ok(VerifyState { op, updated: false });
        }
        let op = s.public(key, CKA_VERIFY, mechanism::verify_init)?;
        Ok(VerifyState { op, updated: false })
    })
}

fn verify(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: CK_ULONG,
) -> Result<()> {
    op::step(session, VERIFY, |v| {
        op::not_updated(v.updated)?;
        let data = ffi::in_slice(data, data_len)?;
        let sig = ffi::in_slice(sig, sig_len)?;
        v.op.update(data)?;
        v.op.finish(sig)?;
        Ok(Step::Done)
    })
}

fn verify_update(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG) -> Result<()> {
    op::step(session, VERIFY, |v| {
        op::multipart_only(v.op.multipart())?;
        v.op.update(ffi::in_slice(part, part_len)?)?;
        v.updated = true;
        Ok(Step::Keep)
    })
}

fn verify_final(session: CK_SESSION_HANDLE, sig: *mut CK_BYTE, sig_len: CK_ULONG) -> Result<()> {
    op::step(session, VERIFY, |v| {
        op::multipart_only(v.op.multipart())?;
        v.op.finish(ffi::in_slice(sig, sig_len)?)?;
        Ok(Step::Done)
    })
}
