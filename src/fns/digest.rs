//! Message digesting: C_DigestInit, C_Digest, C_DigestUpdate, C_DigestKey, C_DigestFinal.

use cryptoki_sys::*;

use super::Step;
use super::op::{self, Field};
use crate::error::Result;
use crate::export::{api_function, not_supported};
use crate::ffi::{self, OutBuf};
use crate::mechanism::digest::{DigestOp, digest_init as start};

api_function!(C_DigestInit(session: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM) => digest_init);
api_function!(C_Digest(session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => digest);
api_function!(C_DigestUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG) => digest_update);
api_function!(C_DigestFinal(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => digest_final);
not_supported!(C_DigestKey(CK_SESSION_HANDLE, CK_OBJECT_HANDLE));

const DIGEST: Field<DigestOp> = |o| &mut o.digest;

fn digest_init(session: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM) -> Result<()> {
    op::init(session, mech, CKF_DIGEST, DIGEST, |s| {
        start(&s.slot.policy, s.mech)
    })
}

/// Finish the digest under the two-call rule. `data` is the single-part input, if any.
fn finish(d: &mut DigestOp, data: Option<&[u8]>, out: &OutBuf) -> Result<Step> {
    if let Some(step) = op::room(out, d.len)? {
        return Ok(step);
    }
    if let Some(data) = data {
        d.hasher.update(data);
    }
    let h = d.hasher.clone().finalize();
    out.put(&h)?;
    Ok(Step::Done)
}

fn digest(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> Result<()> {
    op::step(session, DIGEST, |d| {
        op::not_updated(d.updated)?;
        let out = OutBuf::new(out, out_len)?;
        let data = ffi::in_slice(data, data_len)?;
        finish(d, Some(data), &out)
    })
}

fn digest_update(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG) -> Result<()> {
    op::step(session, DIGEST, |d| {
        d.hasher.update(ffi::in_slice(part, part_len)?);
        d.updated = true;
        Ok(Step::Keep)
    })
}

fn digest_final(
    session: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> Result<()> {
    op::step(session, DIGEST, |d| {
        let out = OutBuf::new(out, out_len)?;
        finish(d, None, &out)
    })
}
