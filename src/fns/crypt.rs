//! Encryption and decryption: C_EncryptInit, C_Encrypt, C_EncryptUpdate, C_EncryptFinal,
//! C_DecryptInit, C_Decrypt, C_DecryptUpdate, C_DecryptFinal. RSA mechanisms are single-part.
//! Encryption is local; decryption is a blinded private operation on the cells.

use cryptoki_sys::*;

use super::sign::{private_key, public_key, with_cell_key};
use super::{Step, settle};
use crate::error::{Result, err};
use crate::export::api_function;
use crate::ffi::{self, OutBuf};
use crate::mechanism::{self, params};
use crate::state::{self, DecryptState};

api_function!(C_EncryptInit(session: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) => encrypt_init);
api_function!(C_Encrypt(session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => encrypt);
api_function!(C_EncryptUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => encrypt_update);
api_function!(C_EncryptFinal(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => encrypt_final);
api_function!(C_DecryptInit(session: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) => decrypt_init);
api_function!(C_Decrypt(session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => decrypt);
api_function!(C_DecryptUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => decrypt_update);
api_function!(C_DecryptFinal(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => decrypt_final);

fn encrypt_init(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    let mech = params::parse(mech)?;
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        let mut ops = sess.ops();
        if ops.encrypt.is_some() {
            return Err(err(CKR_OPERATION_ACTIVE));
        }
        mechanism::entry(&slot.policy, mech.ty)?;
        let key = public_key(slot, key, mech.ty, CKA_ENCRYPT)?;
        let public = key.rsa_public()?;
        slot.policy.check_key_size(public.bits())?;
        ops.encrypt = Some(mechanism::encrypt_init(&slot.policy, &mech, public)?);
        Ok(())
    })
}

fn encrypt(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> Result<()> {
    state::with_state(|st| {
        let sess = st.session(session)?;
        let mut ops = sess.ops();
        let e = ops
            .encrypt
            .as_mut()
            .ok_or(err(CKR_OPERATION_NOT_INITIALIZED))?;
        let r = (|| {
            let out = OutBuf::new(out, out_len)?;
            let data = ffi::in_slice(data, data_len)?;
            let n = e.output_len();
            if out.is_query() {
                out.set_len(n);
                return Ok(Step::Keep);
            }
            if !out.fits(n) {
                out.set_len(n);
                return Err(err(CKR_BUFFER_TOO_SMALL));
            }
            let c = e.encrypt(data)?;
            out.put(&c)?;
            Ok(Step::Done)
        })();
        settle(&mut ops.encrypt, r)
    })
}

/// RSA encryption is single-part: the multi-part calls end the operation.
fn encrypt_update(
    session: CK_SESSION_HANDLE,
    _p: *mut CK_BYTE,
    _l: CK_ULONG,
    _o: *mut CK_BYTE,
    _ol: *mut CK_ULONG,
) -> Result<()> {
    end_encrypt(session)
}

fn encrypt_final(session: CK_SESSION_HANDLE, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) -> Result<()> {
    end_encrypt(session)
}

fn end_encrypt(session: CK_SESSION_HANDLE) -> Result<()> {
    state::with_state(|st| {
        let sess = st.session(session)?;
        let mut ops = sess.ops();
        ops.encrypt
            .take()
            .ok_or(err(CKR_OPERATION_NOT_INITIALIZED))?;
        Err(err(CKR_FUNCTION_NOT_SUPPORTED))
    })
}

fn decrypt_init(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    let mech = params::parse(mech)?;
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        let mut ops = sess.ops();
        if ops.decrypt.is_some() {
            return Err(err(CKR_OPERATION_ACTIVE));
        }
        mechanism::entry(&slot.policy, mech.ty)?;
        let key = private_key(slot, key, mech.ty, CKA_DECRYPT)?;
        let public = key.rsa_public()?;
        slot.policy.check_key_size(public.bits())?;
        let op = mechanism::decrypt_init(&slot.policy, &mech, public)?;
        let needs_auth = key.bool(CKA_ALWAYS_AUTHENTICATE) == Some(true);
        ops.decrypt = Some(DecryptState {
            op,
            key,
            needs_auth,
            pending: None,
        });
        Ok(())
    })
}

fn decrypt(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> Result<()> {
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        let mut ops = sess.ops();
        let d = ops
            .decrypt
            .as_mut()
            .ok_or(err(CKR_OPERATION_NOT_INITIALIZED))?;
        let r = (|| {
            let out = OutBuf::new(out, out_len)?;
            let data = ffi::in_slice(data, data_len)?;
            // A plaintext already computed for a too-small buffer answers the retry.
            if let Some(p) = &d.pending {
                return Ok(match out.put(p.expose())? {
                    ffi::Written::Data => Step::Done,
                    ffi::Written::LengthOnly => Step::Keep,
                });
            }
            if out.is_query() {
                // Upper bound: the plaintext is at most k bytes.
                out.set_len(d.op.output_len());
                return Ok(Step::Keep);
            }
            if d.needs_auth {
                return Err(err(CKR_USER_NOT_LOGGED_IN));
            }
            let plain = with_cell_key(st, slot, &d.key, |k| d.op.decrypt(data, k))?;
            if out.fits(plain.len()) {
                out.put(plain.expose())?;
                return Ok(Step::Done);
            }
            out.set_len(plain.len());
            d.pending = Some(plain);
            Err(err(CKR_BUFFER_TOO_SMALL))
        })();
        settle(&mut ops.decrypt, r)
    })
}

fn decrypt_update(
    session: CK_SESSION_HANDLE,
    _p: *mut CK_BYTE,
    _l: CK_ULONG,
    _o: *mut CK_BYTE,
    _ol: *mut CK_ULONG,
) -> Result<()> {
    end_decrypt(session)
}

fn decrypt_final(session: CK_SESSION_HANDLE, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) -> Result<()> {
    end_decrypt(session)
}

fn end_decrypt(session: CK_SESSION_HANDLE) -> Result<()> {
    state::with_state(|st| {
        let sess = st.session(session)?;
        let mut ops = sess.ops();
        ops.decrypt
            .take()
            .ok_or(err(CKR_OPERATION_NOT_INITIALIZED))?;
        Err(err(CKR_FUNCTION_NOT_SUPPORTED))
    })
}
