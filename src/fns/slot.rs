//! Slot and token management: C_GetSlotList, C_GetSlotInfo, C_GetTokenInfo,
//! C_GetMechanismList, C_GetMechanismInfo, C_InitToken, C_InitPIN, C_SetPIN.

use cryptoki_sys::*;
use keyfrag_client::UserKind;
use keyfrag_core::hash::HashAlg;

use super::general::{MANUFACTURER, library_version};
use crate::error::{Result, err};
use crate::export::{api_function, not_supported};
use crate::ffi;
use crate::mechanism;
use crate::object::ObjectStore;
use crate::state::{self, lock};

api_function!(C_GetSlotList(present: CK_BBOOL, list: *mut CK_SLOT_ID, count: *mut CK_ULONG) => get_slot_list);
api_function!(C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) => get_slot_info);
api_function!(C_GetTokenInfo(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) => get_token_info);
api_function!(C_GetMechanismList(slot: CK_SLOT_ID, list: *mut CK_MECHANISM_TYPE, count: *mut CK_ULONG) => get_mechanism_list);
api_function!(C_GetMechanismInfo(slot: CK_SLOT_ID, ty: CK_MECHANISM_TYPE, info: *mut CK_MECHANISM_INFO) => get_mechanism_info);
api_function!(C_InitToken(slot: CK_SLOT_ID, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG, label: *mut CK_UTF8CHAR) => init_token);
api_function!(C_InitPIN(session: CK_SESSION_HANDLE, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG) => init_pin);
api_function!(C_SetPIN(session: CK_SESSION_HANDLE, old: *mut CK_UTF8CHAR, old_len: CK_ULONG, new: *mut CK_UTF8CHAR, new_len: CK_ULONG) => set_pin);
not_supported!(C_WaitForSlotEvent(CK_FLAGS, *mut CK_SLOT_ID, *mut std::ffi::c_void));

pub const MODEL: &str = "keyfrag";
pub const MIN_PIN_LEN: CK_ULONG = 4;
pub const MAX_PIN_LEN: CK_ULONG = 255;

fn get_slot_list(_present: CK_BBOOL, list: *mut CK_SLOT_ID, count: *mut CK_ULONG) -> Result<()> {
    state::with_state(|st| {
        // Every slot has its token present: the token is the configured cluster.
        let ids: Vec<CK_SLOT_ID> = st.slots.iter().map(|s| s.id).collect();
        ffi::out_array(list, count, &ids)
    })
}

fn get_slot_info(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> Result<()> {
    state::with_state(|st| {
        let s = st.slot(slot)?;
        ffi::write_out(
            info,
            CK_SLOT_INFO {
                slotDescription: ffi::pad_str(&format!("keyfrag {}", s.config.label)),
                manufacturerID: ffi::pad_str(MANUFACTURER),
                flags: CKF_TOKEN_PRESENT,
                hardwareVersion: library_version(),
                firmwareVersion: library_version(),
            },
        )
    })
}

/// The token serial number: derived from the configured label, stable across processes.
pub fn serial_number(label: &str) -> String {
    HashAlg::Sha256.digest(label.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn get_token_info(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> Result<()> {
    state::with_state(|st| {
        let s = st.slot(slot)?;
        if info.is_null() {
            return Err(err(CKR_ARGUMENTS_BAD));
        }
        let mut flags = CKF_RNG | CKF_LOGIN_REQUIRED;
        let mut label = s.config.label.clone();
        match s.token_status() {
            Some(t) => {
                if !t.label.is_empty() {
                    label = t.label.clone();
                }
                let bits = [
                    (t.initialized, CKF_TOKEN_INITIALIZED),
                    (t.user_pin_initialized, CKF_USER_PIN_INITIALIZED),
                    (t.user_pin_count_low, CKF_USER_PIN_COUNT_LOW),
                    (t.user_pin_final_try, CKF_USER_PIN_FINAL_TRY),
                    (t.user_pin_locked, CKF_USER_PIN_LOCKED),
                    (t.so_pin_count_low, CKF_SO_PIN_COUNT_LOW),
                    (t.so_pin_final_try, CKF_SO_PIN_FINAL_TRY),
                    (t.so_pin_locked, CKF_SO_PIN_LOCKED),
                ];
                for (on, f) in bits {
                    if on {
                        flags |= f;
                    }
                }
            }
            // Never reached the cells: answer as an initialised token (the config says it
            // exists); operations will report CKR_DEVICE_ERROR.
            None => flags |= CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED,
        }
        let sessions = st.sessions_on(slot);
        let rw = sessions.iter().filter(|x| x.rw).count();
        ffi::write_out(
            info,
            CK_TOKEN_INFO {
                label: ffi::pad_str(&label),
                manufacturerID: ffi::pad_str(MANUFACTURER),
                model: ffi::pad_str(MODEL),
                serialNumber: ffi::pad_str(&serial_number(&s.config.label)),
                flags,
                ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
                ulSessionCount: sessions.len() as CK_ULONG,
                ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
                ulRwSessionCount: rw as CK_ULONG,
                ulMaxPinLen: MAX_PIN_LEN,
                ulMinPinLen: MIN_PIN_LEN,
                ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
                ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
                ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
                ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
                hardwareVersion: library_version(),
                firmwareVersion: library_version(),
                utcTime: [b' '; 16],
            },
        )
    })
}

fn get_mechanism_list(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> Result<()> {
    state::with_state(|st| {
        let s = st.slot(slot)?;
        ffi::out_array(list, count, &mechanism::list(&s.policy))
    })
}

fn get_mechanism_info(
    slot: CK_SLOT_ID,
    ty: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> Result<()> {
    state::with_state(|st| {
        let s = st.slot(slot)?;
        ffi::write_out(info, mechanism::info(&s.policy, ty)?)
    })
}

fn init_token(
    slot: CK_SLOT_ID,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
    label: *mut CK_UTF8CHAR,
) -> Result<()> {
    state::with_state(|st| {
        let s = st.slot(slot)?;
        if pin.is_null() || label.is_null() {
            return Err(err(CKR_ARGUMENTS_BAD));
        }
        let pin = ffi::in_secret_str(pin, pin_len)?;
        let label = ffi::in_slice(label, 32)?;
        let label = std::str::from_utf8(label).map_err(|_| err(CKR_ARGUMENTS_BAD))?;
        let label = label.trim_end_matches([' ', '\0']);
        let mut login = lock(&s.login);
        if !st.sessions_on(slot).is_empty() {
            return Err(err(CKR_SESSION_EXISTS));
        }
        s.cluster.init_token(&pin, label)?;
        s.customer.forget();
        s.data_keys.clear();
        if login.take().is_some() {
            s.cluster.logout();
        }
        *lock(&s.objects) = ObjectStore::default();
        s.invalidate_status();
        tracing::info!(slot, "token initialised");
        Ok(())
    })
}

fn init_pin(session: CK_SESSION_HANDLE, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG) -> Result<()> {
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        if pin.is_null() {
            return Err(err(CKR_ARGUMENTS_BAD));
        }
        let pin = ffi::in_secret_str(pin, pin_len)?;
        if slot.logged_in() != Some(UserKind::So) {
            return Err(err(CKR_USER_NOT_LOGGED_IN));
        }
        if !sess.rw {
            return Err(err(CKR_SESSION_READ_ONLY));
        }
        if pin.len() < MIN_PIN_LEN as usize || pin.len() > MAX_PIN_LEN as usize {
            return Err(err(CKR_PIN_LEN_RANGE));
        }
        let r = slot.cluster.init_pin(&pin);
        slot.invalidate_status();
        r?;
        slot.customer.note_pin_reset();
        Ok(())
    })
}

fn set_pin(
    session: CK_SESSION_HANDLE,
    old: *mut CK_UTF8CHAR,
    old_len: CK_ULONG,
    new: *mut CK_UTF8CHAR,
    new_len: CK_ULONG,
) -> Result<()> {
    state::with_state(|st| {
        let (sess, slot) = st.session_slot(session)?;
        if old.is_null() || new.is_null() {
            return Err(err(CKR_ARGUMENTS_BAD));
        }
        let old = ffi::in_secret_str(old, old_len)?;
        let new = ffi::in_secret_str(new, new_len)?;
        if !sess.rw {
            return Err(err(CKR_SESSION_READ_ONLY));
        }
        if new.len() < MIN_PIN_LEN as usize || new.len() > MAX_PIN_LEN as usize {
            return Err(err(CKR_PIN_LEN_RANGE));
        }
        // The SO's PIN protects no customer fragment; the user's re-seals it with the change.
        let r = if slot.logged_in() == Some(UserKind::So) {
            slot.cluster.set_pin(&old, &new).map_err(Into::into)
        } else {
            slot.customer
                .change_pin(&old, &new, || Ok(slot.cluster.set_pin(&old, &new)?))
        };
        slot.invalidate_status();
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_is_16_hex_digits_and_stable() {
        let a = serial_number("keyfrag-test");
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, serial_number("keyfrag-test"));
        assert_ne!(a, serial_number("other"));
    }
}
