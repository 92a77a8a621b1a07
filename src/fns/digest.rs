//! Message digesting: C_DigestInit, C_Digest, C_DigestUpdate, C_DigestKey, C_DigestFinal.

use cryptoki_sys::*;

use super::{Step, settle};
use crate::error::{Result, err};
use crate::export::{api_function, not_supported};
use crate::ffi::{self, OutBuf};
use crate::mechanism::digest::{DigestOp, digest_init as start};
use crate::mechanism::params;
use crate::state;

api_function!(C_DigestInit(session: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM) => digest_init);
api_function!(C_Digest(session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => digest);
api_function!(C_DigestUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG) => digest_update);
api_function!(C_DigestFinal(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => digest_final);
not_supported!(C_DigestKey(CK_SESSION_HANDLE, CK_OBJECT_HANDLE));

fn digest_init(session: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM) -> Result<()> {
    let mech = params::parse(mech)?;
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        let mut ops = sess.ops();
        if ops.digest.is_some() {
            return Err(err(CKR_OPERATION_ACTIVE));
        }
        ops.digest = Some(start(&slot.policy, &mech)?);
        Ok(())
    })
}

fn finish(d: &mut DigestOp, out: &OutBuf) -> Result<Step> {
    if out.is_query() {
        out.set_len(d.len);
        return Ok(Step::Keep);
    }
    if !out.fits(d.len) {
        out.set_len(d.len);
        return Err(err(CKR_BUFFER_TOO_SMALL));
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
    state::with_state(|st| {
        let sess = st.session(session)?;
        let mut ops = sess.ops();
        let d = ops
            .digest
            .as_mut()
            .ok_or(err(CKR_OPERATION_NOT_INITIALIZED))?;
        let r = (|| {
            if d.updated {
                return Err(err(CKR_OPERATION_ACTIVE));
            }
            let out = OutBuf::new(out, out_len)?;
            let data = ffi::in_slice(data, data_len)?;
            if out.is_query() || !out.fits(d.len) {
                return finish(d, &out);
            }
            d.hasher.update(data);
            finish(d, &out)
        })();
        settle(&mut ops.digest, r)
    })
}

fn digest_update(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG) -> Result<()> {
    state::with_state(|st| {
        let sess = st.session(session)?;
        let mut ops = sess.ops();
        let d = ops
            .digest
            .as_mut()
            .ok_or(err(CKR_OPERATION_NOT_INITIALIZED))?;
        let r = (|| {
            d.hasher.update(ffi::in_slice(part, part_len)?);
            d.updated = true;
            Ok(Step::Keep)
        })();
        settle(&mut ops.digest, r)
    })
}

fn digest_final(
    session: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> Result<()> {
    state::with_state(|st| {
        let sess = st.session(session)?;
        let mut ops = sess.ops();
        let d = ops
            .digest
            .as_mut()
            .ok_or(err(CKR_OPERATION_NOT_INITIALIZED))?;
        let r = (|| {
            let out = OutBuf::new(out, out_len)?;
            finish(d, &out)
        })();
        settle(&mut ops.digest, r)
    })
}
