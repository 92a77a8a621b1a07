//! Encryption and decryption: C_EncryptInit, C_Encrypt, C_EncryptUpdate, C_EncryptFinal,
//! C_DecryptInit, C_Decrypt, C_DecryptUpdate, C_DecryptFinal.
//!
//! RSA mechanisms are single-part: encryption is local, decryption a blinded private
//! operation on the cells. Secret keys (AES) are single- and multi-part: the data key is
//! derived from the cells' PRF at C_*Init (or taken from the slot's cache) and the operation
//! runs in the module (`fns/secret.rs`); the per-message mechanism evaluates the PRF per
//! message instead.

use cryptoki_sys::*;

use super::Step;
use super::op::{self, Field};
use super::secret::{self, Call};
use super::sign::with_cell_key;
use crate::error::{Result, err};
use crate::export::api_function;
use crate::ffi::{self, OutBuf};
use crate::mechanism;
use crate::state::{DecryptState, EncryptState, RsaDecrypt, SymState};

api_function!(C_EncryptInit(session: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) => encrypt_init);
api_function!(C_Encrypt(session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => encrypt);
api_function!(C_EncryptUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => encrypt_update);
api_function!(C_EncryptFinal(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => encrypt_final);
api_function!(C_DecryptInit(session: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) => decrypt_init);
api_function!(C_Decrypt(session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => decrypt);
api_function!(C_DecryptUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => decrypt_update);
api_function!(C_DecryptFinal(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => decrypt_final);

const ENCRYPT: Field<EncryptState> = |o| &mut o.encrypt;
const DECRYPT: Field<DecryptState> = |o| &mut o.decrypt;

fn encrypt_init(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    op::init(session, mech, CKF_ENCRYPT, ENCRYPT, |s| {
        if s.is_secret(key) {
            let k = s.secret(key, CKA_ENCRYPT)?;
            let c = secret::cipher(s.slot, s.mech, &k, true)?;
            return Ok(EncryptState::Sym(SymState::new(c)));
        }
        Ok(EncryptState::Rsa(s.public(
            key,
            CKA_ENCRYPT,
            mechanism::encrypt_init,
        )?))
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
        let e = match e {
            EncryptState::Sym(s) => return secret::step(s, Call::Single(data), &out),
            EncryptState::Rsa(e) => e,
        };
        if let Some(step) = op::room(&out, e.output_len())? {
            return Ok(step);
        }
        let c = e.encrypt(data)?;
        out.put(&c)?;
        Ok(Step::Done)
    })
}

/// C_EncryptUpdate: multi-part for secret keys; it ends an RSA operation (single-part).
fn encrypt_update(
    session: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> Result<()> {
    op::step(session, ENCRYPT, |e| match e {
        EncryptState::Sym(s) => {
            let out = OutBuf::new(out, out_len)?;
            secret::step(s, Call::Update(ffi::in_slice(part, part_len)?), &out)
        }
        EncryptState::Rsa(_) => Err(err(CKR_FUNCTION_NOT_SUPPORTED)),
    })
}

fn encrypt_final(
    session: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> Result<()> {
    op::step(session, ENCRYPT, |e| match e {
        EncryptState::Sym(s) => secret::step(s, Call::Final, &OutBuf::new(out, out_len)?),
        EncryptState::Rsa(_) => Err(err(CKR_FUNCTION_NOT_SUPPORTED)),
    })
}

fn decrypt_init(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    op::init(session, mech, CKF_DECRYPT, DECRYPT, |s| {
        if s.is_secret(key) {
            let k = s.secret(key, CKA_DECRYPT)?;
            let c = secret::cipher(s.slot, s.mech, &k, false)?;
            return Ok(DecryptState::Sym(SymState::new(c)));
        }
        let (key, op, needs_auth) = s.private(key, CKA_DECRYPT, mechanism::decrypt_init)?;
        Ok(DecryptState::Rsa(RsaDecrypt {
            op,
            key,
            needs_auth,
            pending: None,
        }))
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
        let d = match d {
            DecryptState::Sym(s) => return secret::step(s, Call::Single(data), &out),
            DecryptState::Rsa(d) => d,
        };
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

/// C_DecryptUpdate: multi-part for secret keys; it ends an RSA operation (single-part).
fn decrypt_update(
    session: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> Result<()> {
    op::step(session, DECRYPT, |d| match d {
        DecryptState::Sym(s) => {
            let out = OutBuf::new(out, out_len)?;
            secret::step(s, Call::Update(ffi::in_slice(part, part_len)?), &out)
        }
        DecryptState::Rsa(_) => Err(err(CKR_FUNCTION_NOT_SUPPORTED)),
    })
}

fn decrypt_final(
    session: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> Result<()> {
    op::step(session, DECRYPT, |d| match d {
        DecryptState::Sym(s) => secret::step(s, Call::Final, &OutBuf::new(out, out_len)?),
        DecryptState::Rsa(_) => Err(err(CKR_FUNCTION_NOT_SUPPORTED)),
    })
}
