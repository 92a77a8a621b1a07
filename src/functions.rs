//! The function tables (CK_FUNCTION_LIST for 2.40, CK_FUNCTION_LIST_3_0 for 3.0), the
//! interface list, and the only three symbols the library exports: C_GetFunctionList,
//! C_GetInterfaceList and C_GetInterface. Every other entry point is reached through a table.

use cryptoki_sys::*;

use crate::error::{Result, err};
use crate::export::api_function;
use crate::ffi::{self, StaticInterface};
use crate::fns::{
    crypt::*, digest::*, general::*, keygen::*, login::*, object::*, random::*, secret_keygen::*,
    session::*, sign::*, slot::*, unsupported::*, wrap::*,
};

macro_rules! function_list {
    ($ty:ident, $version:expr, { $($extra:ident),* $(,)? }) => {
        $ty {
            version: $version,
            C_Initialize: Some(C_Initialize),
            C_Finalize: Some(C_Finalize),
            C_GetInfo: Some(C_GetInfo),
            C_GetFunctionList: Some(C_GetFunctionList),
            C_GetSlotList: Some(C_GetSlotList),
            C_GetSlotInfo: Some(C_GetSlotInfo),
            C_GetTokenInfo: Some(C_GetTokenInfo),
            C_GetMechanismList: Some(C_GetMechanismList),
            C_GetMechanismInfo: Some(C_GetMechanismInfo),
            C_InitToken: Some(C_InitToken),
            C_InitPIN: Some(C_InitPIN),
            C_SetPIN: Some(C_SetPIN),
            C_OpenSession: Some(C_OpenSession),
            C_CloseSession: Some(C_CloseSession),
            C_CloseAllSessions: Some(C_CloseAllSessions),
            C_GetSessionInfo: Some(C_GetSessionInfo),
            C_GetOperationState: Some(C_GetOperationState),
            C_SetOperationState: Some(C_SetOperationState),
            C_Login: Some(C_Login),
            C_Logout: Some(C_Logout),
            C_CreateObject: Some(C_CreateObject),
            C_CopyObject: Some(C_CopyObject),
            C_DestroyObject: Some(C_DestroyObject),
            C_GetObjectSize: Some(C_GetObjectSize),
            C_GetAttributeValue: Some(C_GetAttributeValue),
            C_SetAttributeValue: Some(C_SetAttributeValue),
            C_FindObjectsInit: Some(C_FindObjectsInit),
            C_FindObjects: Some(C_FindObjects),
            C_FindObjectsFinal: Some(C_FindObjectsFinal),
            C_EncryptInit: Some(C_EncryptInit),
            C_Encrypt: Some(C_Encrypt),
            C_EncryptUpdate: Some(C_EncryptUpdate),
            C_EncryptFinal: Some(C_EncryptFinal),
            C_DecryptInit: Some(C_DecryptInit),
            C_Decrypt: Some(C_Decrypt),
            C_DecryptUpdate: Some(C_DecryptUpdate),
            C_DecryptFinal: Some(C_DecryptFinal),
            C_DigestInit: Some(C_DigestInit),
            C_Digest: Some(C_Digest),
            C_DigestUpdate: Some(C_DigestUpdate),
            C_DigestKey: Some(C_DigestKey),
            C_DigestFinal: Some(C_DigestFinal),
            C_SignInit: Some(C_SignInit),
            C_Sign: Some(C_Sign),
            C_SignUpdate: Some(C_SignUpdate),
            C_SignFinal: Some(C_SignFinal),
            C_SignRecoverInit: Some(C_SignRecoverInit),
            C_SignRecover: Some(C_SignRecover),
            C_VerifyInit: Some(C_VerifyInit),
            C_Verify: Some(C_Verify),
            C_VerifyUpdate: Some(C_VerifyUpdate),
            C_VerifyFinal: Some(C_VerifyFinal),
            C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
            C_VerifyRecover: Some(C_VerifyRecover),
            C_DigestEncryptUpdate: Some(C_DigestEncryptUpdate),
            C_DecryptDigestUpdate: Some(C_DecryptDigestUpdate),
            C_SignEncryptUpdate: Some(C_SignEncryptUpdate),
            C_DecryptVerifyUpdate: Some(C_DecryptVerifyUpdate),
            C_GenerateKey: Some(C_GenerateKey),
            C_GenerateKeyPair: Some(C_GenerateKeyPair),
            C_WrapKey: Some(C_WrapKey),
            C_UnwrapKey: Some(C_UnwrapKey),
            C_DeriveKey: Some(C_DeriveKey),
            C_SeedRandom: Some(C_SeedRandom),
            C_GenerateRandom: Some(C_GenerateRandom),
            C_GetFunctionStatus: Some(C_GetFunctionStatus),
            C_CancelFunction: Some(C_CancelFunction),
            C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
            $($extra: Some($extra),)*
        }
    };
}

static FUNCTION_LIST: CK_FUNCTION_LIST = function_list!(
    CK_FUNCTION_LIST,
    CK_VERSION {
        major: 2,
        minor: 40
    },
    {}
);

static FUNCTION_LIST_3_0: CK_FUNCTION_LIST_3_0 = function_list!(CK_FUNCTION_LIST_3_0, CK_VERSION { major: 3, minor: 0 }, {
    C_GetInterfaceList,
    C_GetInterface,
    C_LoginUser,
    C_SessionCancel,
    C_MessageEncryptInit,
    C_EncryptMessage,
    C_EncryptMessageBegin,
    C_EncryptMessageNext,
    C_MessageEncryptFinal,
    C_MessageDecryptInit,
    C_DecryptMessage,
    C_DecryptMessageBegin,
    C_DecryptMessageNext,
    C_MessageDecryptFinal,
    C_MessageSignInit,
    C_SignMessage,
    C_SignMessageBegin,
    C_SignMessageNext,
    C_MessageSignFinal,
    C_MessageVerifyInit,
    C_VerifyMessage,
    C_VerifyMessageBegin,
    C_VerifyMessageNext,
    C_MessageVerifyFinal,
});

/// The interface name every PKCS#11 3.0 interface carries.
const INTERFACE_NAME: &[u8] = b"PKCS 11\0";

/// Interfaces, best first: 3.0, then 2.40.
static INTERFACES: [StaticInterface; 2] = [
    StaticInterface(CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTION_LIST_3_0 as *const CK_FUNCTION_LIST_3_0 as *mut std::ffi::c_void,
        flags: 0,
    }),
    StaticInterface(CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut std::ffi::c_void,
        flags: 0,
    }),
];

fn interface_version(i: &StaticInterface) -> (u8, u8) {
    if std::ptr::eq(
        i.0.pFunctionList as *const CK_FUNCTION_LIST_3_0,
        &FUNCTION_LIST_3_0,
    ) {
        (3, 0)
    } else {
        (2, 40)
    }
}

// The three exported symbols. `api_function!` makes them `pub(crate)`; these wrappers carry
// the `#[unsafe(no_mangle)]`.

fn get_function_list(out: *mut *mut CK_FUNCTION_LIST) -> Result<()> {
    ffi::write_out(
        out,
        &FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST,
    )
}

fn get_interface_list(list: *mut CK_INTERFACE, count: *mut CK_ULONG) -> Result<()> {
    let items: Vec<CK_INTERFACE> = INTERFACES.iter().map(|i| i.0).collect();
    ffi::out_array(list, count, &items)
}

/// C_GetInterface: a NULL name means "PKCS 11"; a NULL version means the best (3.0); never
/// CKR_OK with a NULL interface (COMPAT item 12).
fn get_interface(
    name: *mut CK_UTF8CHAR,
    version: *mut CK_VERSION,
    out: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> Result<()> {
    if out.is_null() {
        return Err(err(CKR_ARGUMENTS_BAD));
    }
    if let Some(n) = ffi::c_string(name as *const std::ffi::c_void, 256)?
        && n != "PKCS 11"
    {
        return Err(err(CKR_ARGUMENTS_BAD));
    }
    let wanted = if version.is_null() {
        None
    } else {
        let v: CK_VERSION = ffi::read_in(version)?;
        Some((v.major, v.minor))
    };
    let found = INTERFACES
        .iter()
        .find(|i| wanted.is_none_or(|w| w == interface_version(i)) && i.0.flags & flags == flags)
        .ok_or(err(CKR_ARGUMENTS_BAD))?;
    ffi::write_out(out, &found.0 as *const CK_INTERFACE as *mut CK_INTERFACE)
}

api_function!(GetFunctionList(out: *mut *mut CK_FUNCTION_LIST) => get_function_list);
api_function!(GetInterfaceList(list: *mut CK_INTERFACE, count: *mut CK_ULONG) => get_interface_list);
api_function!(GetInterface(name: *mut CK_UTF8CHAR, version: *mut CK_VERSION, out: *mut *mut CK_INTERFACE, flags: CK_FLAGS) => get_interface);

/// Entry point of PKCS#11 2.x: the 2.40 function list.
#[unsafe(no_mangle)]
pub extern "C" fn C_GetFunctionList(out: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    GetFunctionList(out)
}

/// PKCS#11 3.0: the interfaces offered ("PKCS 11" 3.0 and 2.40).
#[unsafe(no_mangle)]
pub extern "C" fn C_GetInterfaceList(list: *mut CK_INTERFACE, count: *mut CK_ULONG) -> CK_RV {
    GetInterfaceList(list, count)
}

/// PKCS#11 3.0: one interface by name and version.
#[unsafe(no_mangle)]
pub extern "C" fn C_GetInterface(
    name: *mut CK_UTF8CHAR,
    version: *mut CK_VERSION,
    out: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    GetInterface(name, version, out, flags)
}
