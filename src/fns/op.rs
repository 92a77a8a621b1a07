//! What the operation families (sign, verify, encrypt, decrypt, digest) share: starting an
//! operation in its member of a session's `Ops`, with its key, one call of an active operation
//! under the termination rule, and the length half of the two-call rule.

use std::sync::Arc;

use cryptoki_sys::*;
use keyfrag_core::rsa_public::RsaPublic;

use super::{Step, key_handle_error, settle};
use crate::error::{Result, err};
use crate::ffi::{self, OutBuf};
use crate::mechanism::{self, Mechanism, Policy, params};
use crate::object::Object;
use crate::state::{self, Ops, Slot, State};

/// The member of a session's `Ops` that holds one kind of operation.
pub(crate) type Field<T> = fn(&mut Ops) -> &mut Option<T>;

/// How a mechanism builds its operation (`mechanism::sign_init` and the like).
type Make<O> = fn(&Policy, &Mechanism, RsaPublic) -> Result<O>;

/// C_*Init, checking in the order applications expect: the library is initialised, the
/// session exists, the mechanism pointer is readable, the token offers the mechanism for
/// this kind of operation (`flag`, e.g. CKF_SIGN: else CKR_MECHANISM_INVALID, before its
/// parameters are looked at), its parameters are valid, no operation of the kind is active
/// (CKR_OPERATION_ACTIVE); then store what `start` builds.
pub(crate) fn init<T>(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    flag: CK_FLAGS,
    field: Field<T>,
    start: impl FnOnce(&Start<'_>) -> Result<T>,
) -> Result<()> {
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        let raw: CK_MECHANISM = ffi::read_in(mech)?;
        if mechanism::entry(&slot.policy, raw.mechanism)?.flags & flag == 0 {
            tracing::debug!(
                mechanism = raw.mechanism,
                flag,
                "mechanism not offered for this operation"
            );
            return Err(err(CKR_MECHANISM_INVALID));
        }
        let mech = params::parse(mech)?;
        let mut ops = sess.ops();
        let op = field(&mut ops);
        if op.is_some() {
            return Err(err(CKR_OPERATION_ACTIVE));
        }
        *op = Some(start(&Start { slot, mech: &mech })?);
        Ok(())
    })
}

/// What an init builds its operation from: the session's slot and the parsed mechanism.
pub(crate) struct Start<'a> {
    pub slot: &'a Slot,
    pub mech: &'a Mechanism,
}

impl Start<'_> {
    /// A public-key operation (verify, encrypt) with the key `handle`, permitted for `usage`.
    pub(crate) fn public<O>(
        &self,
        handle: CK_OBJECT_HANDLE,
        usage: CK_ATTRIBUTE_TYPE,
        make: Make<O>,
    ) -> Result<O> {
        Ok(self.keyed(handle, CKO_PUBLIC_KEY, usage, make)?.1)
    }

    /// A private-key operation (sign, decrypt): the key, the operation, and whether a
    /// CKU_CONTEXT_SPECIFIC login is due before it (CKA_ALWAYS_AUTHENTICATE).
    pub(crate) fn private<O>(
        &self,
        handle: CK_OBJECT_HANDLE,
        usage: CK_ATTRIBUTE_TYPE,
        make: Make<O>,
    ) -> Result<(Arc<Object>, O, bool)> {
        let (key, op) = self.keyed(handle, CKO_PRIVATE_KEY, usage, make)?;
        let needs_auth = key.bool(CKA_ALWAYS_AUTHENTICATE) == Some(true);
        Ok((key, op, needs_auth))
    }

    /// Whether `handle` names a visible secret key (the symmetric path); anything else takes
    /// the RSA path, which reports what is wrong with it.
    pub(crate) fn is_secret(&self, handle: CK_OBJECT_HANDLE) -> bool {
        self.slot
            .visible_object(handle)
            .is_ok_and(|o| o.class() == CKO_SECRET_KEY)
    }

    /// A secret key for an operation with the mechanism: as `key` checks a private key, and
    /// of the key type the mechanism takes (CKR_KEY_TYPE_INCONSISTENT otherwise).
    pub(crate) fn secret(
        &self,
        handle: CK_OBJECT_HANDLE,
        usage: CK_ATTRIBUTE_TYPE,
    ) -> Result<Arc<Object>> {
        mechanism::entry(&self.slot.policy, self.mech.ty)?;
        let key = self.key(handle, CKO_SECRET_KEY, usage)?;
        if mechanism::secret::key_type(self.mech.ty) != key.ulong(CKA_KEY_TYPE) {
            tracing::debug!(
                mechanism = self.mech.ty,
                "mechanism not usable with this key type"
            );
            return Err(err(CKR_KEY_TYPE_INCONSISTENT));
        }
        Ok(key)
    }

    /// In order: the mechanism's entry, the key, the key size, the operation.
    fn keyed<O>(
        &self,
        handle: CK_OBJECT_HANDLE,
        class: CK_OBJECT_CLASS,
        usage: CK_ATTRIBUTE_TYPE,
        make: Make<O>,
    ) -> Result<(Arc<Object>, O)> {
        mechanism::entry(&self.slot.policy, self.mech.ty)?;
        let key = self.key(handle, class, usage)?;
        let public = key.rsa_public()?;
        self.slot.policy.check_key_size(public.bits())?;
        let op = make(&self.slot.policy, self.mech, public)?;
        Ok((key, op))
    }

    /// The key `handle` for an operation with the mechanism: visible, of `class`, permitted for
    /// `usage`. A private key must also have fragments and the user be logged in.
    fn key(
        &self,
        handle: CK_OBJECT_HANDLE,
        class: CK_OBJECT_CLASS,
        usage: CK_ATTRIBUTE_TYPE,
    ) -> Result<Arc<Object>> {
        let (slot, mech) = (self.slot, self.mech.ty);
        let private = class == CKO_PRIVATE_KEY || class == CKO_SECRET_KEY;
        let key = slot.visible_object(handle).map_err(key_handle_error)?;
        if key.class() != class || (private && key.key_uid.is_none()) {
            return Err(err(CKR_KEY_TYPE_INCONSISTENT));
        }
        if private && !slot.user_logged_in() {
            return Err(err(CKR_USER_NOT_LOGGED_IN));
        }
        if key.bool(usage) != Some(true) {
            return Err(err(CKR_KEY_FUNCTION_NOT_PERMITTED));
        }
        if !key.allows(mech) {
            if private {
                tracing::debug!(
                    mechanism = mech,
                    "mechanism not in the key's CKA_ALLOWED_MECHANISMS"
                );
            }
            return Err(err(CKR_MECHANISM_INVALID));
        }
        Ok(key)
    }
}

/// One call of an active operation: the session, the operation (else
/// CKR_OPERATION_NOT_INITIALIZED), then `f` under the termination rule (`settle`).
pub(crate) fn step<T>(
    session: CK_SESSION_HANDLE,
    field: Field<T>,
    f: impl FnOnce(&mut T) -> Result<Step>,
) -> Result<()> {
    state::with_state(|st| {
        let sess = st.session(session)?;
        run(&mut sess.ops(), field, f)
    })
}

/// `step` for a call that also needs the state and the session's slot (the cells).
pub(crate) fn step_on_slot<T>(
    session: CK_SESSION_HANDLE,
    field: Field<T>,
    f: impl FnOnce(&State, &Slot, &mut T) -> Result<Step>,
) -> Result<()> {
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        run(&mut sess.ops(), field, |op| f(st, slot, op))
    })
}

fn run<T>(ops: &mut Ops, field: Field<T>, f: impl FnOnce(&mut T) -> Result<Step>) -> Result<()> {
    let slot = field(ops);
    let op = slot.as_mut().ok_or(err(CKR_OPERATION_NOT_INITIALIZED))?;
    let r = f(op);
    settle(slot, r)
}

/// C_*Update and C_*Final need a multi-part mechanism.
pub(crate) fn multipart_only(multipart: bool) -> Result<()> {
    if multipart {
        Ok(())
    } else {
        Err(err(CKR_FUNCTION_NOT_SUPPORTED))
    }
}

/// The single-part call is refused once C_*Update was called.
pub(crate) fn not_updated(updated: bool) -> Result<()> {
    if updated {
        Err(err(CKR_OPERATION_ACTIVE))
    } else {
        Ok(())
    }
}

/// The length half of the two-call rule for an output of `n` bytes: a length query is answered
/// (`Some(Step::Keep)`), a too-small buffer is CKR_BUFFER_TOO_SMALL (both with the length
/// written); `None` when the output fits.
pub(crate) fn room(out: &OutBuf, n: usize) -> Result<Option<Step>> {
    if out.is_query() {
        out.set_len(n);
        return Ok(Some(Step::Keep));
    }
    if !out.fits(n) {
        out.set_len(n);
        return Err(err(CKR_BUFFER_TOO_SMALL));
    }
    Ok(None)
}
