//! Session management: C_OpenSession, C_CloseSession, C_CloseAllSessions, C_GetSessionInfo,
//! C_SessionCancel. Closing a slot's last session logs the token out.

use std::ffi::c_void;
use std::sync::Arc;

use cryptoki_sys::*;
use keyfrag_client::UserKind;

use crate::error::{Result, err};
use crate::export::{api_function, not_supported};
use crate::ffi;
use crate::state::{self, Session, Slot, State, lock, write};

api_function!(C_OpenSession(slot: CK_SLOT_ID, flags: CK_FLAGS, app: *mut c_void, notify: CK_NOTIFY, out: *mut CK_SESSION_HANDLE) => open_session);
api_function!(C_CloseSession(session: CK_SESSION_HANDLE) => close_session);
api_function!(C_CloseAllSessions(slot: CK_SLOT_ID) => close_all_sessions);
api_function!(C_GetSessionInfo(session: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO) => get_session_info);
api_function!(C_SessionCancel(session: CK_SESSION_HANDLE, flags: CK_FLAGS) => session_cancel);
not_supported!(C_GetOperationState(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG));
not_supported!(
    C_SetOperationState(
        CK_SESSION_HANDLE,
        *mut CK_BYTE,
        CK_ULONG,
        CK_OBJECT_HANDLE,
        CK_OBJECT_HANDLE,
    )
);

/// Legacy functions: PKCS#11 (3.0 §5.20) says they simply return CKR_FUNCTION_NOT_PARALLEL.
#[allow(non_snake_case)]
pub(crate) extern "C" fn C_GetFunctionStatus(_: CK_SESSION_HANDLE) -> CK_RV {
    CKR_FUNCTION_NOT_PARALLEL
}

#[allow(non_snake_case)]
pub(crate) extern "C" fn C_CancelFunction(_: CK_SESSION_HANDLE) -> CK_RV {
    CKR_FUNCTION_NOT_PARALLEL
}

fn open_session(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    _app: *mut c_void,
    _notify: CK_NOTIFY,
    out: *mut CK_SESSION_HANDLE,
) -> Result<()> {
    state::with_state(|st| {
        let s = st.slot(slot)?;
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(err(CKR_SESSION_PARALLEL_NOT_SUPPORTED));
        }
        if out.is_null() {
            return Err(err(CKR_ARGUMENTS_BAD));
        }
        let rw = flags & CKF_RW_SESSION != 0;
        // Lock order: login, then the session map.
        let login = lock(&s.login);
        if !rw && *login == Some(UserKind::So) {
            return Err(err(CKR_SESSION_READ_WRITE_SO_EXISTS));
        }
        let handle = state::next_handle();
        write(&st.sessions).insert(handle, Arc::new(Session::new(handle, slot, rw)));
        drop(login);
        ffi::write_out(out, handle)
    })
}

/// Close one session: its session objects go (their fragments are deleted from the cells
/// when no other object uses them); the last session of a slot logs out.
pub(crate) fn close(st: &State, slot: &Slot, handle: CK_SESSION_HANDLE) -> Result<()> {
    {
        let mut login = lock(&slot.login);
        let Some(sess) = write(&st.sessions).remove(&handle) else {
            return Err(err(CKR_SESSION_HANDLE_INVALID));
        };
        // A generation running on the session stops and returns CKR_SESSION_CLOSED; it
        // creates no objects once its session is gone (see fns/keygen.rs).
        sess.cancel_keygen();
        if st.sessions_on(slot.id).is_empty() && login.take().is_some() {
            slot.customer.forget();
            slot.data_keys.clear();
            slot.cluster.logout();
        }
    }
    let removed = lock(&slot.objects).remove_owned_by(handle);
    for o in removed {
        let Some(uid) = &o.key_uid else { continue };
        if lock(&slot.objects).uid_in_use(uid) {
            continue;
        }
        if let Err(e) = slot.cluster.delete_key(uid) {
            tracing::warn!(
                slot = slot.id,
                "could not delete a session key (its lease will expire): {}",
                e.message
            );
        }
    }
    Ok(())
}

fn close_session(session: CK_SESSION_HANDLE) -> Result<()> {
    state::with_state(|st| {
        let (_, slot) = st.session_slot(session)?;
        close(st, slot, session)
    })
}

fn close_all_sessions(slot: CK_SLOT_ID) -> Result<()> {
    state::with_state(|st| {
        let s = st.slot(slot)?;
        for sess in st.sessions_on(slot) {
            // A session closed concurrently is fine.
            let _ = close(st, s, sess.handle);
        }
        Ok(())
    })
}

/// The session state from the token-wide login and the session's kind.
pub fn session_state(login: Option<UserKind>, rw: bool) -> CK_STATE {
    match (login, rw) {
        (None, false) => CKS_RO_PUBLIC_SESSION,
        (None, true) => CKS_RW_PUBLIC_SESSION,
        (Some(UserKind::User), false) => CKS_RO_USER_FUNCTIONS,
        (Some(UserKind::User), true) => CKS_RW_USER_FUNCTIONS,
        (Some(UserKind::So), _) => CKS_RW_SO_FUNCTIONS,
    }
}

fn get_session_info(session: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO) -> Result<()> {
    state::with_state(|st| {
        let (s, slot) = st.session_slot(session)?;
        let mut flags = CKF_SERIAL_SESSION;
        if s.rw {
            flags |= CKF_RW_SESSION;
        }
        ffi::write_out(
            info,
            CK_SESSION_INFO {
                slotID: s.slot,
                state: session_state(slot.logged_in(), s.rw),
                flags,
                ulDeviceError: 0,
            },
        )
    })
}

/// C_SessionCancel (PKCS#11 3.0; SunPKCS11 calls it): end the operations named by `flags`.
fn session_cancel(session: CK_SESSION_HANDLE, flags: CK_FLAGS) -> Result<()> {
    state::with_state(|st| {
        let s = st.session(session)?;
        // Key generation is one long call, not a session operation: cancelling sets the flag
        // the running C_GenerateKeyPair passes to the cells, which abort and clean up; that
        // call then returns CKR_FUNCTION_CANCELED. Done first, so the cancel does not wait
        // for the operations lock (a signature in progress holds it).
        if flags & CKF_GENERATE_KEY_PAIR != 0 {
            s.cancel_keygen();
        }
        let mut ops = s.ops();
        if flags & CKF_SIGN != 0 {
            ops.sign = None;
        }
        if flags & CKF_VERIFY != 0 {
            ops.verify = None;
        }
        if flags & CKF_ENCRYPT != 0 {
            ops.encrypt = None;
        }
        if flags & CKF_DECRYPT != 0 {
            ops.decrypt = None;
        }
        if flags & CKF_DIGEST != 0 {
            ops.digest = None;
        }
        if flags & CKF_FIND_OBJECTS != 0 {
            ops.find = None;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        assert_eq!(session_state(None, false), CKS_RO_PUBLIC_SESSION);
        assert_eq!(session_state(None, true), CKS_RW_PUBLIC_SESSION);
        assert_eq!(
            session_state(Some(UserKind::User), false),
            CKS_RO_USER_FUNCTIONS
        );
        assert_eq!(
            session_state(Some(UserKind::User), true),
            CKS_RW_USER_FUNCTIONS
        );
        assert_eq!(session_state(Some(UserKind::So), true), CKS_RW_SO_FUNCTIONS);
    }
}
