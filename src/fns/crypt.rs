//! Encryption and decryption: C_EncryptInit, C_Encrypt, C_EncryptUpdate, C_EncryptFinal,
//! C_DecryptInit, C_Decrypt, C_DecryptUpdate, C_DecryptFinal. RSA mechanisms are single-part.
//! Encryption is local; decryption is a blinded private operation on the cells.

use cryptoki_sys::*;

use super::Step;
use super::op::{self, Field};
use super::sign::with_cell_key;
use crate::error::{Result, err};
use crate::export::api_function;
use crate::ffi::{self, OutBuf};
use crate::mechanism::{self, Encrypt};
use crate::state::DecryptState;

api_function!(C_EncryptInit(session: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) => encrypt_init);
api_function!(C_Encrypt(session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => encrypt);
api_function!(C_EncryptUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => end_update::<Box<dyn Encrypt>>);
api_function!(C_EncryptFinal(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => end_final::<Box<dyn Encrypt>>);
api_function!(C_DecryptInit(session: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) => decrypt_init);
api_function!(C_Decrypt(session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => decrypt);
api_function!(C_DecryptUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => end_update::<DecryptState>);
api_function!(C_DecryptFinal(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => end_final::<DecryptState>);

const ENCRYPT: Field<Box<dyn Encrypt>> = |o| &mut o.encrypt;
const DECRYPT: Field<DecryptState> = |o| &mut o.decrypt;

/// RSA encryption and decryption are single-part: the multi-part calls end the operation.
trait SinglePart: Sized {
    const FIELD: Field<Self>;
}

impl SinglePart for Box<dyn Encrypt> {
    const FIELD: Field<Self> = ENCRYPT;
}

impl SinglePart for DecryptState {
    const FIELD: Field<Self> = DECRYPT;
}

/// C_EncryptUpdate, C_DecryptUpdate.
fn end_update<T: SinglePart>(
    session: CK_SESSION_HANDLE,
    _p: *mut CK_BYTE,
    _l: CK_ULONG,
    _o: *mut CK_BYTE,
    _ol: *mut CK_ULONG,
) -> Result<()> {
    op::end_single_part(session, T::FIELD)
}

/// C_EncryptFinal, C_DecryptFinal.
fn end_final<T: SinglePart>(
    session: CK_SESSION_HANDLE,
    _o: *mut CK_BYTE,
    _ol: *mut CK_ULONG,
) -> Result<()> {
    op::end_single_part(session, T::FIELD)
}

fn encrypt_init(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    op::init(session, mech, CKF_ENCRYPT, ENCRYPT, |s| {
        s.public(key, CKA_ENCRYPT, mechanism::encrypt_init)
    })
}

fn encrypt(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> Result<()> {
    op::step(session, ENCRYPT, |e| {
        let out = OutBuf::new(out, out_len)?;
        let data = ffi::in_slice(data, data_len)?;
        if let Some(step) = op::room(&out, e.output_len())? {
            return Ok(step);
        }
        let c = e.encrypt(data)?;
        out.put(&c)?;
        Ok(Step::Done)
    })
}

fn decrypt_init(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    op::init(session, mech, CKF_DECRYPT, DECRYPT, |s| {
        let (key, op, needs_auth) = s.private(key, CKA_DECRYPT, mechanism::decrypt_init)?;
        Ok(DecryptState {
            op,
            key,
            needs_auth,
            pending: None,
        })
    })
}

fn decrypt(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> Result<()> {
    op::step_on_slot(session, DECRYPT, |st, slot, d| {
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
    })
}
