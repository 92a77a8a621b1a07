//! Login: C_Login, C_Logout. The login state is token-wide: one C_Login serves every session
//! of the slot, and the cells hold the proof (each issued a login token).

use cryptoki_sys::*;
use keyfrag_client::UserKind;

use crate::error::{Result, err};
use crate::export::{api_function, not_supported};
use crate::ffi;
use crate::state::{self, DecryptState, lock};

api_function!(C_Login(session: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG) => login);
api_function!(C_Logout(session: CK_SESSION_HANDLE) => logout);
not_supported!(
    C_LoginUser(
        CK_SESSION_HANDLE,
        CK_USER_TYPE,
        *mut CK_UTF8CHAR,
        CK_ULONG,
        *mut CK_UTF8CHAR,
        CK_ULONG,
    )
);

fn login(
    session: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
) -> Result<()> {
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        let kind = match user {
            CKU_USER => UserKind::User,
            CKU_SO => UserKind::So,
            CKU_CONTEXT_SPECIFIC => {
                // Re-authentication for a CKA_ALWAYS_AUTHENTICATE key's pending operation.
                let mut ops = sess.ops();
                let pending = ops.sign.as_ref().is_some_and(|s| s.needs_auth)
                    || matches!(&ops.decrypt, Some(DecryptState::Rsa(d)) if d.needs_auth);
                if !pending {
                    return Err(err(CKR_OPERATION_NOT_INITIALIZED));
                }
                if !slot.user_logged_in() {
                    return Err(err(CKR_USER_NOT_LOGGED_IN));
                }
                if pin.is_null() {
                    return Err(err(CKR_ARGUMENTS_BAD));
                }
                let pin = ffi::in_secret_str(pin, pin_len)?;
                let r = slot.cluster.login(UserKind::User, &pin);
                slot.invalidate_status();
                r?;
                if let Some(s) = ops.sign.as_mut() {
                    s.needs_auth = false;
                }
                if let Some(DecryptState::Rsa(d)) = ops.decrypt.as_mut() {
                    d.needs_auth = false;
                }
                return Ok(());
            }
            _ => return Err(err(CKR_USER_TYPE_INVALID)),
        };
        let mut login = lock(&slot.login);
        match *login {
            Some(k) if k == kind => return Err(err(CKR_USER_ALREADY_LOGGED_IN)),
            Some(_) => return Err(err(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)),
            None => {}
        }
        if kind == UserKind::So && st.sessions_on(slot.id).iter().any(|s| !s.rw) {
            return Err(err(CKR_SESSION_READ_ONLY_EXISTS));
        }
        // No protected authentication path: the PIN comes with the call.
        if pin.is_null() {
            return Err(err(CKR_ARGUMENTS_BAD));
        }
        let pin = ffi::in_secret_str(pin, pin_len)?;
        let r = slot.cluster.login(kind, &pin);
        slot.invalidate_status();
        r?;
        if kind == UserKind::User {
            slot.customer.unlock(&pin);
        }
        *login = Some(kind);
        Ok(())
    })
}

fn logout(session: CK_SESSION_HANDLE) -> Result<()> {
    state::with_state(|st| {
        let (_, slot) = st.session_slot(session)?;
        let mut login = lock(&slot.login);
        if login.take().is_none() {
            return Err(err(CKR_USER_NOT_LOGGED_IN));
        }
        slot.customer.forget();
        slot.data_keys.clear();
        slot.cluster.logout();
        Ok(())
    })
}
