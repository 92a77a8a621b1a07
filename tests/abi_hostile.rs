//! Hostile input over every entry point (issue 8, item 1): NULL and dangling-length arguments,
//! zero and huge lengths, invalid and stale handles, another slot's handles, every call before
//! C_Initialize and after C_Finalize, operations out of order, wrong mechanism parameters, and
//! bad templates. Each case asserts the exact return code; the count is printed at the end.
#![allow(clippy::macro_metavars_in_unsafe)] // `call!` wraps calls through the C function list

mod common;

use std::ffi::c_void;
use std::ptr::{null, null_mut};

use common::*;
use cryptoki_sys::*;
use keyfrag_cli::testbed::{Testbed, TestbedOptions};
use keyfrag_client::Config;

/// Records every case; fails at the end listing all mismatches at once.
#[derive(Default)]
struct Cases {
    count: usize,
    failures: Vec<String>,
}

impl Cases {
    fn check(&mut self, name: &str, got: CK_RV, want: CK_RV) {
        self.count += 1;
        if got != want {
            self.failures
                .push(format!("{name}: got {got:#x}, want {want:#x}"));
        }
    }

    fn finish(self, suite: &str) {
        println!(
            "{suite}: {} hostile-input cases, {} failed",
            self.count,
            self.failures.len()
        );
        assert!(
            self.failures.is_empty(),
            "{suite}:\n{}",
            self.failures.join("\n")
        );
    }
}

/// The 3.0 function list.
fn fl3() -> &'static CK_FUNCTION_LIST_3_0 {
    let mut iface: *mut CK_INTERFACE = null_mut();
    assert_eq!(
        keyfrag_pkcs11::C_GetInterface(null_mut(), null_mut(), &mut iface, 0),
        CKR_OK
    );
    // SAFETY: the module returns its static interface, whose list is a CK_FUNCTION_LIST_3_0.
    unsafe { &*((*iface).pFunctionList as *const CK_FUNCTION_LIST_3_0) }
}

/// A zero value of any argument type: every PKCS#11 argument is an integer, a pointer or an
/// optional function pointer, for which all-zero bits are valid (0, NULL, None).
fn z<T>() -> T {
    // SAFETY: see above; only used with such types.
    unsafe { std::mem::zeroed() }
}

macro_rules! zcall {
    ($f:expr, $name:ident, 1) => {
        unsafe { ($f.$name.unwrap())(z()) }
    };
    ($f:expr, $name:ident, 2) => {
        unsafe { ($f.$name.unwrap())(z(), z()) }
    };
    ($f:expr, $name:ident, 3) => {
        unsafe { ($f.$name.unwrap())(z(), z(), z()) }
    };
    ($f:expr, $name:ident, 4) => {
        unsafe { ($f.$name.unwrap())(z(), z(), z(), z()) }
    };
    ($f:expr, $name:ident, 5) => {
        unsafe { ($f.$name.unwrap())(z(), z(), z(), z(), z()) }
    };
    ($f:expr, $name:ident, 6) => {
        unsafe { ($f.$name.unwrap())(z(), z(), z(), z(), z(), z()) }
    };
    ($f:expr, $name:ident, 7) => {
        unsafe { ($f.$name.unwrap())(z(), z(), z(), z(), z(), z(), z()) }
    };
    ($f:expr, $name:ident, 8) => {
        unsafe { ($f.$name.unwrap())(z(), z(), z(), z(), z(), z(), z(), z()) }
    };
    ($f:expr, $name:ident, 9) => {
        unsafe { ($f.$name.unwrap())(z(), z(), z(), z(), z(), z(), z(), z(), z()) }
    };
}

/// Every entry point of the 3.0 list called with all-zero arguments, except the ones that
/// need real arguments to mean anything (C_Initialize, C_Finalize, C_GetFunctionList,
/// C_GetInterface, C_WaitForSlotEvent without CKF_DONT_BLOCK would block by definition).
macro_rules! every_function_zeroed {
    ($f:expr, $visit:expr) => {{
        let f = $f;
        let mut visit = $visit;
        visit("C_GetInfo", zcall!(f, C_GetInfo, 1));
        visit("C_GetSlotList", zcall!(f, C_GetSlotList, 3));
        visit("C_GetSlotInfo", zcall!(f, C_GetSlotInfo, 2));
        visit("C_GetTokenInfo", zcall!(f, C_GetTokenInfo, 2));
        visit("C_GetMechanismList", zcall!(f, C_GetMechanismList, 3));
        visit("C_GetMechanismInfo", zcall!(f, C_GetMechanismInfo, 3));
        visit("C_InitToken", zcall!(f, C_InitToken, 4));
        visit("C_InitPIN", zcall!(f, C_InitPIN, 3));
        visit("C_SetPIN", zcall!(f, C_SetPIN, 5));
        visit("C_OpenSession", zcall!(f, C_OpenSession, 5));
        visit("C_CloseSession", zcall!(f, C_CloseSession, 1));
        visit("C_GetSessionInfo", zcall!(f, C_GetSessionInfo, 2));
        visit("C_GetOperationState", zcall!(f, C_GetOperationState, 3));
        visit("C_SetOperationState", zcall!(f, C_SetOperationState, 5));
        visit("C_Login", zcall!(f, C_Login, 4));
        visit("C_Logout", zcall!(f, C_Logout, 1));
        visit("C_CreateObject", zcall!(f, C_CreateObject, 4));
        visit("C_CopyObject", zcall!(f, C_CopyObject, 5));
        visit("C_DestroyObject", zcall!(f, C_DestroyObject, 2));
        visit("C_GetObjectSize", zcall!(f, C_GetObjectSize, 3));
        visit("C_GetAttributeValue", zcall!(f, C_GetAttributeValue, 4));
        visit("C_SetAttributeValue", zcall!(f, C_SetAttributeValue, 4));
        visit("C_FindObjectsInit", zcall!(f, C_FindObjectsInit, 3));
        visit("C_FindObjects", zcall!(f, C_FindObjects, 4));
        visit("C_FindObjectsFinal", zcall!(f, C_FindObjectsFinal, 1));
        visit("C_EncryptInit", zcall!(f, C_EncryptInit, 3));
        visit("C_Encrypt", zcall!(f, C_Encrypt, 5));
        visit("C_EncryptUpdate", zcall!(f, C_EncryptUpdate, 5));
        visit("C_EncryptFinal", zcall!(f, C_EncryptFinal, 3));
        visit("C_DecryptInit", zcall!(f, C_DecryptInit, 3));
        visit("C_Decrypt", zcall!(f, C_Decrypt, 5));
        visit("C_DecryptUpdate", zcall!(f, C_DecryptUpdate, 5));
        visit("C_DecryptFinal", zcall!(f, C_DecryptFinal, 3));
        visit("C_DigestInit", zcall!(f, C_DigestInit, 2));
        visit("C_Digest", zcall!(f, C_Digest, 5));
        visit("C_DigestUpdate", zcall!(f, C_DigestUpdate, 3));
        visit("C_DigestKey", zcall!(f, C_DigestKey, 2));
        visit("C_DigestFinal", zcall!(f, C_DigestFinal, 3));
        visit("C_SignInit", zcall!(f, C_SignInit, 3));
        visit("C_Sign", zcall!(f, C_Sign, 5));
        visit("C_SignUpdate", zcall!(f, C_SignUpdate, 3));
        visit("C_SignFinal", zcall!(f, C_SignFinal, 3));
        visit("C_SignRecoverInit", zcall!(f, C_SignRecoverInit, 3));
        visit("C_SignRecover", zcall!(f, C_SignRecover, 5));
        visit("C_VerifyInit", zcall!(f, C_VerifyInit, 3));
        visit("C_Verify", zcall!(f, C_Verify, 5));
        visit("C_VerifyUpdate", zcall!(f, C_VerifyUpdate, 3));
        visit("C_VerifyFinal", zcall!(f, C_VerifyFinal, 3));
        visit("C_VerifyRecoverInit", zcall!(f, C_VerifyRecoverInit, 3));
        visit("C_VerifyRecover", zcall!(f, C_VerifyRecover, 5));
        visit("C_DigestEncryptUpdate", zcall!(f, C_DigestEncryptUpdate, 5));
        visit("C_DecryptDigestUpdate", zcall!(f, C_DecryptDigestUpdate, 5));
        visit("C_SignEncryptUpdate", zcall!(f, C_SignEncryptUpdate, 5));
        visit("C_DecryptVerifyUpdate", zcall!(f, C_DecryptVerifyUpdate, 5));
        visit("C_GenerateKey", zcall!(f, C_GenerateKey, 5));
        visit("C_GenerateKeyPair", zcall!(f, C_GenerateKeyPair, 8));
        visit("C_WrapKey", zcall!(f, C_WrapKey, 6));
        visit("C_UnwrapKey", zcall!(f, C_UnwrapKey, 8));
        visit("C_DeriveKey", zcall!(f, C_DeriveKey, 6));
        visit("C_SeedRandom", zcall!(f, C_SeedRandom, 3));
        visit("C_GenerateRandom", zcall!(f, C_GenerateRandom, 3));
        visit("C_GetFunctionStatus", zcall!(f, C_GetFunctionStatus, 1));
        visit("C_CancelFunction", zcall!(f, C_CancelFunction, 1));
        visit("C_LoginUser", zcall!(f, C_LoginUser, 6));
        visit("C_SessionCancel", zcall!(f, C_SessionCancel, 2));
        visit("C_MessageEncryptInit", zcall!(f, C_MessageEncryptInit, 3));
        visit("C_EncryptMessage", zcall!(f, C_EncryptMessage, 9));
        visit("C_EncryptMessageBegin", zcall!(f, C_EncryptMessageBegin, 5));
        visit("C_EncryptMessageNext", zcall!(f, C_EncryptMessageNext, 8));
        visit("C_MessageEncryptFinal", zcall!(f, C_MessageEncryptFinal, 1));
        visit("C_MessageDecryptInit", zcall!(f, C_MessageDecryptInit, 3));
        visit("C_DecryptMessage", zcall!(f, C_DecryptMessage, 9));
        visit("C_DecryptMessageBegin", zcall!(f, C_DecryptMessageBegin, 5));
        visit("C_DecryptMessageNext", zcall!(f, C_DecryptMessageNext, 8));
        visit("C_MessageDecryptFinal", zcall!(f, C_MessageDecryptFinal, 1));
        visit("C_MessageSignInit", zcall!(f, C_MessageSignInit, 3));
        visit("C_SignMessage", zcall!(f, C_SignMessage, 7));
        visit("C_SignMessageBegin", zcall!(f, C_SignMessageBegin, 3));
        visit("C_SignMessageNext", zcall!(f, C_SignMessageNext, 7));
        visit("C_MessageSignFinal", zcall!(f, C_MessageSignFinal, 1));
        visit("C_MessageVerifyInit", zcall!(f, C_MessageVerifyInit, 3));
        visit("C_VerifyMessage", zcall!(f, C_VerifyMessage, 7));
        visit("C_VerifyMessageBegin", zcall!(f, C_VerifyMessageBegin, 3));
        visit("C_VerifyMessageNext", zcall!(f, C_VerifyMessageNext, 7));
        visit("C_MessageVerifyFinal", zcall!(f, C_MessageVerifyFinal, 1));
    }};
}

/// Entry points keyfrag does not implement (yet): they answer CKR_FUNCTION_NOT_SUPPORTED in
/// every state, as the specification allows.
const NOT_SUPPORTED: &[&str] = &[
    "C_GetOperationState",
    "C_SetOperationState",
    "C_DigestKey",
    "C_SignRecoverInit",
    "C_SignRecover",
    "C_VerifyRecoverInit",
    "C_VerifyRecover",
    "C_DigestEncryptUpdate",
    "C_DecryptDigestUpdate",
    "C_SignEncryptUpdate",
    "C_DecryptVerifyUpdate",
    "C_DeriveKey",
    "C_LoginUser",
    "C_MessageEncryptInit",
    "C_EncryptMessage",
    "C_EncryptMessageBegin",
    "C_EncryptMessageNext",
    "C_MessageEncryptFinal",
    "C_MessageDecryptInit",
    "C_DecryptMessage",
    "C_DecryptMessageBegin",
    "C_DecryptMessageNext",
    "C_MessageDecryptFinal",
    "C_MessageSignInit",
    "C_SignMessage",
    "C_SignMessageBegin",
    "C_SignMessageNext",
    "C_MessageSignFinal",
    "C_MessageVerifyInit",
    "C_VerifyMessage",
    "C_VerifyMessageBegin",
    "C_VerifyMessageNext",
    "C_MessageVerifyFinal",
];

/// The legacy parallel-function calls: always CKR_FUNCTION_NOT_PARALLEL (PKCS#11 3.0 §5.20).
const LEGACY_PARALLEL: &[&str] = &["C_GetFunctionStatus", "C_CancelFunction"];

/// What each entry point answers to all-zero arguments once initialised with one slot (0)
/// and no session: handle 0 is never a session, so session functions say so first.
fn zeroed_answer_initialised(name: &str) -> CK_RV {
    if NOT_SUPPORTED.contains(&name) {
        return CKR_FUNCTION_NOT_SUPPORTED;
    }
    if LEGACY_PARALLEL.contains(&name) {
        return CKR_FUNCTION_NOT_PARALLEL;
    }
    match name {
        "C_GetInfo" | "C_GetSlotList" | "C_GetSlotInfo" | "C_GetTokenInfo"
        | "C_GetMechanismList" | "C_GetMechanismInfo" | "C_InitToken" => CKR_ARGUMENTS_BAD,
        // Flags 0 lacks CKF_SERIAL_SESSION, which the spec checks for first.
        "C_OpenSession" => CKR_SESSION_PARALLEL_NOT_SUPPORTED,
        _ => CKR_SESSION_HANDLE_INVALID,
    }
}

fn zeroed_answer_uninitialised(name: &str) -> CK_RV {
    if NOT_SUPPORTED.contains(&name) {
        CKR_FUNCTION_NOT_SUPPORTED
    } else if LEGACY_PARALLEL.contains(&name) {
        CKR_FUNCTION_NOT_PARALLEL
    } else {
        CKR_CRYPTOKI_NOT_INITIALIZED
    }
}

#[test]
fn every_function_before_initialize_after_finalize_and_with_zero_arguments() {
    let _g = serial();
    let f = fl3();
    let mut cases = Cases::default();
    every_function_zeroed!(f, |name: &str, rv| {
        cases.check(
            &format!("{name} before C_Initialize"),
            rv,
            zeroed_answer_uninitialised(name),
        )
    });
    cases.check(
        "C_Finalize before C_Initialize",
        call!(C_Finalize, null_mut()),
        CKR_CRYPTOKI_NOT_INITIALIZED,
    );

    let bed = Testbed::start(TestbedOptions::default());
    cases.check(
        "C_Initialize",
        initialize(&bed.config_path, CKF_OS_LOCKING_OK),
        CKR_OK,
    );
    cases.check(
        "C_Initialize twice",
        initialize(&bed.config_path, CKF_OS_LOCKING_OK),
        CKR_CRYPTOKI_ALREADY_INITIALIZED,
    );
    every_function_zeroed!(f, |name: &str, rv| {
        cases.check(
            &format!("{name} with zero arguments"),
            rv,
            zeroed_answer_initialised(name),
        )
    });
    cases.check(
        "C_Finalize with pReserved set",
        call!(C_Finalize, std::ptr::dangling_mut::<c_void>()),
        CKR_ARGUMENTS_BAD,
    );
    cases.check("C_Finalize", call!(C_Finalize, null_mut()), CKR_OK);
    cases.check(
        "C_Finalize twice",
        call!(C_Finalize, null_mut()),
        CKR_CRYPTOKI_NOT_INITIALIZED,
    );
    every_function_zeroed!(f, |name: &str, rv| {
        cases.check(
            &format!("{name} after C_Finalize"),
            rv,
            zeroed_answer_uninitialised(name),
        )
    });
    cases.finish("lifecycle");
}

/// A fixture with two slots (two tokens, each on its own cells), a user login on slot 0, an
/// imported key pair on each slot and a digest-only session.
struct TwoSlots {
    _beds: [Testbed; 2],
    _guard: std::sync::MutexGuard<'static, ()>,
}

impl TwoSlots {
    fn new() -> TwoSlots {
        let guard = serial();
        let a = Testbed::start(TestbedOptions::default());
        let b = Testbed::start(TestbedOptions {
            label: "keyfrag-other".into(),
            ..TestbedOptions::default()
        });
        let mut config = Config::load(&a.config_path).unwrap();
        config
            .tokens
            .push(Config::load(&b.config_path).unwrap().tokens.remove(0));
        let path = a.dir.path().join("two-slots.toml");
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
        assert_eq!(initialize(&path, CKF_OS_LOCKING_OK), CKR_OK);
        TwoSlots {
            _beds: [a, b],
            _guard: guard,
        }
    }
}

impl Drop for TwoSlots {
    fn drop(&mut self) {
        let _ = call!(C_Finalize, null_mut());
    }
}

fn open_on(slot: CK_SLOT_ID) -> CK_SESSION_HANDLE {
    let mut h = 0;
    assert_eq!(
        call!(
            C_OpenSession,
            slot,
            CKF_SERIAL_SESSION | CKF_RW_SESSION,
            null_mut(),
            None,
            &mut h
        ),
        CKR_OK
    );
    h
}

fn pss(
    hash: CK_MECHANISM_TYPE,
    mgf: CK_RSA_PKCS_MGF_TYPE,
    salt: CK_ULONG,
) -> CK_RSA_PKCS_PSS_PARAMS {
    CK_RSA_PKCS_PSS_PARAMS {
        hashAlg: hash,
        mgf,
        sLen: salt,
    }
}

fn oaep(hash: CK_MECHANISM_TYPE, mgf: CK_RSA_PKCS_MGF_TYPE) -> CK_RSA_PKCS_OAEP_PARAMS {
    CK_RSA_PKCS_OAEP_PARAMS {
        hashAlg: hash,
        mgf,
        source: CKZ_DATA_SPECIFIED,
        pSourceData: null_mut(),
        ulSourceDataLen: 0,
    }
}

fn init_with(
    f: unsafe extern "C" fn(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE) -> CK_RV,
    h: CK_SESSION_HANDLE,
    m: &mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    // SAFETY: a function of the module's list, with a valid mechanism.
    unsafe { f(h, m, key) }
}

#[test]
fn sessions_handles_operations_parameters_and_templates() {
    let _f = TwoSlots::new();
    let fl = fl();
    let sign_init = fl.C_SignInit.unwrap();
    let decrypt_init = fl.C_DecryptInit.unwrap();
    let verify_init = fl.C_VerifyInit.unwrap();
    let mut cases = Cases::default();

    // Sessions.
    let mut h = 0;
    cases.check(
        "C_OpenSession on slot 7",
        call!(
            C_OpenSession,
            7,
            CKF_SERIAL_SESSION,
            null_mut(),
            None,
            &mut h
        ),
        CKR_SLOT_ID_INVALID,
    );
    cases.check(
        "C_OpenSession with a NULL handle pointer",
        call!(
            C_OpenSession,
            0,
            CKF_SERIAL_SESSION,
            null_mut(),
            None,
            null_mut()
        ),
        CKR_ARGUMENTS_BAD,
    );
    let h = open_on(0);
    let h_other = open_on(1);
    cases.check("C_Login (user)", login(h, CKU_USER, USER_PIN), CKR_OK);
    cases.check(
        "C_Login on slot 1",
        login(h_other, CKU_USER, USER_PIN),
        CKR_OK,
    );
    let (key, public) = import_rsa(h, rsa_key(), false, b"h0");
    let (other_key, _) = import_rsa(h_other, rsa_key(), false, b"h1");
    let stale = open_on(0);
    cases.check("C_CloseSession", call!(C_CloseSession, stale), CKR_OK);
    cases.check(
        "C_CloseSession twice",
        call!(C_CloseSession, stale),
        CKR_SESSION_HANDLE_INVALID,
    );
    let mut info: CK_SESSION_INFO = z();
    cases.check(
        "C_GetSessionInfo on a closed session",
        call!(C_GetSessionInfo, stale, &mut info),
        CKR_SESSION_HANDLE_INVALID,
    );
    cases.check(
        "C_GetSessionInfo with NULL info",
        call!(C_GetSessionInfo, h, null_mut()),
        CKR_ARGUMENTS_BAD,
    );
    cases.check(
        "C_Login with NULL PIN and a length",
        call!(C_Login, h, CKU_USER, null_mut(), 4),
        CKR_USER_ALREADY_LOGGED_IN,
    );
    cases.check(
        "C_Login with an unknown user type",
        call!(C_Login, h, 7, b"1234".as_ptr() as *mut u8, 4),
        CKR_USER_TYPE_INVALID,
    );
    cases.check(
        "C_CloseAllSessions on slot 9",
        call!(C_CloseAllSessions, 9),
        CKR_SLOT_ID_INVALID,
    );

    // Slot and token queries.
    let mut n: CK_ULONG = 0;
    cases.check(
        "C_GetSlotList counting",
        call!(C_GetSlotList, CK_FALSE, null_mut(), &mut n),
        CKR_OK,
    );
    cases.check(
        "two slots",
        if n == 2 { CKR_OK } else { CKR_GENERAL_ERROR },
        CKR_OK,
    );
    let mut one: [CK_SLOT_ID; 1] = [0];
    n = 1;
    cases.check(
        "C_GetSlotList into a buffer of 1",
        call!(C_GetSlotList, CK_FALSE, one.as_mut_ptr(), &mut n),
        CKR_BUFFER_TOO_SMALL,
    );
    let mut tinfo: CK_TOKEN_INFO = z();
    cases.check(
        "C_GetTokenInfo on slot 2",
        call!(C_GetTokenInfo, 2, &mut tinfo),
        CKR_SLOT_ID_INVALID,
    );
    let mut minfo: CK_MECHANISM_INFO = z();
    cases.check(
        "C_GetMechanismInfo of CKM_MD5",
        call!(C_GetMechanismInfo, 0, CKM_MD5, &mut minfo),
        CKR_MECHANISM_INVALID,
    );

    // Object handles: stale, unknown, and another slot's.
    cases.check(
        "C_SignInit with object handle 0",
        init_with(sign_init, h, &mut mech(CKM_SHA256_RSA_PKCS), 0),
        CKR_KEY_HANDLE_INVALID,
    );
    cases.check(
        "C_SignInit with another slot's key",
        init_with(sign_init, h, &mut mech(CKM_SHA256_RSA_PKCS), other_key),
        CKR_KEY_HANDLE_INVALID,
    );
    let mut len: CK_ULONG = 0;
    cases.check(
        "C_GetObjectSize of another slot's key",
        call!(C_GetObjectSize, h, other_key, &mut len),
        CKR_OBJECT_HANDLE_INVALID,
    );
    cases.check(
        "C_DestroyObject of another slot's key",
        call!(C_DestroyObject, h, other_key),
        CKR_OBJECT_HANDLE_INVALID,
    );
    let mut t = Tpl::new().bytes(CKA_LABEL, &[0u8; 16]);
    let (tp, tn) = t.ptr();
    cases.check(
        "C_GetAttributeValue of another slot's key",
        call!(C_GetAttributeValue, h, other_key, tp, tn),
        CKR_OBJECT_HANDLE_INVALID,
    );
    cases.check(
        "C_GetAttributeValue with a NULL template and a count",
        call!(C_GetAttributeValue, h, public, null_mut(), 3),
        CKR_ARGUMENTS_BAD,
    );
    let mut copy = 0;
    cases.check(
        "C_CopyObject with a NULL handle pointer",
        call!(C_CopyObject, h, public, null_mut(), 0, null_mut()),
        CKR_ARGUMENTS_BAD,
    );
    cases.check(
        "C_CopyObject of another slot's key",
        call!(C_CopyObject, h, other_key, null_mut(), 0, &mut copy),
        CKR_OBJECT_HANDLE_INVALID,
    );

    // Operations out of order.
    let data = b"hostile".to_vec();
    let mut out = vec![0u8; 512];
    let mut out_len: CK_ULONG = out.len() as CK_ULONG;
    cases.check(
        "C_Sign without C_SignInit",
        call!(
            C_Sign,
            h,
            data.as_ptr() as *mut u8,
            7,
            out.as_mut_ptr(),
            &mut out_len
        ),
        CKR_OPERATION_NOT_INITIALIZED,
    );
    cases.check(
        "C_SignUpdate without C_SignInit",
        call!(C_SignUpdate, h, data.as_ptr() as *mut u8, 7),
        CKR_OPERATION_NOT_INITIALIZED,
    );
    cases.check(
        "C_SignFinal without C_SignInit",
        call!(C_SignFinal, h, out.as_mut_ptr(), &mut out_len),
        CKR_OPERATION_NOT_INITIALIZED,
    );
    cases.check(
        "C_VerifyFinal without C_VerifyInit",
        call!(C_VerifyFinal, h, out.as_mut_ptr(), 256),
        CKR_OPERATION_NOT_INITIALIZED,
    );
    cases.check(
        "C_Decrypt without C_DecryptInit",
        call!(
            C_Decrypt,
            h,
            out.as_mut_ptr(),
            256,
            out.as_mut_ptr(),
            &mut out_len
        ),
        CKR_OPERATION_NOT_INITIALIZED,
    );
    cases.check(
        "C_Encrypt without C_EncryptInit",
        call!(
            C_Encrypt,
            h,
            out.as_mut_ptr(),
            5,
            out.as_mut_ptr(),
            &mut out_len
        ),
        CKR_OPERATION_NOT_INITIALIZED,
    );
    cases.check(
        "C_DigestFinal without C_DigestInit",
        call!(C_DigestFinal, h, out.as_mut_ptr(), &mut out_len),
        CKR_OPERATION_NOT_INITIALIZED,
    );
    cases.check(
        "C_FindObjects without C_FindObjectsInit",
        call!(C_FindObjects, h, &mut copy, 1, &mut len),
        CKR_OPERATION_NOT_INITIALIZED,
    );
    cases.check(
        "C_FindObjectsFinal without C_FindObjectsInit",
        call!(C_FindObjectsFinal, h),
        CKR_OPERATION_NOT_INITIALIZED,
    );
    cases.check(
        "C_SignInit",
        init_with(sign_init, h, &mut mech(CKM_SHA256_RSA_PKCS), key),
        CKR_OK,
    );
    cases.check(
        "C_SignInit twice",
        init_with(sign_init, h, &mut mech(CKM_SHA256_RSA_PKCS), key),
        CKR_OPERATION_ACTIVE,
    );
    cases.check(
        "C_SignUpdate",
        call!(C_SignUpdate, h, data.as_ptr() as *mut u8, 7),
        CKR_OK,
    );
    out_len = out.len() as CK_ULONG;
    cases.check(
        "C_Sign after C_SignUpdate",
        call!(
            C_Sign,
            h,
            data.as_ptr() as *mut u8,
            7,
            out.as_mut_ptr(),
            &mut out_len
        ),
        CKR_OPERATION_ACTIVE,
    );
    // Any C_Sign that fails ends the operation (PKCS#11 3.0 §5.12), this one included.
    out_len = out.len() as CK_ULONG;
    cases.check(
        "C_SignFinal after the failed C_Sign",
        call!(C_SignFinal, h, out.as_mut_ptr(), &mut out_len),
        CKR_OPERATION_NOT_INITIALIZED,
    );
    cases.check(
        "C_SignInit again",
        init_with(sign_init, h, &mut mech(CKM_SHA256_RSA_PKCS), key),
        CKR_OK,
    );
    cases.check(
        "C_SignUpdate again",
        call!(C_SignUpdate, h, data.as_ptr() as *mut u8, 7),
        CKR_OK,
    );
    out_len = out.len() as CK_ULONG;
    cases.check(
        "C_SignFinal",
        call!(C_SignFinal, h, out.as_mut_ptr(), &mut out_len),
        CKR_OK,
    );
    cases.check(
        "C_SignUpdate after C_SignFinal",
        call!(C_SignUpdate, h, data.as_ptr() as *mut u8, 7),
        CKR_OPERATION_NOT_INITIALIZED,
    );
    cases.check(
        "C_FindObjectsInit",
        call!(C_FindObjectsInit, h, null_mut(), 0),
        CKR_OK,
    );
    cases.check(
        "C_FindObjectsInit twice",
        call!(C_FindObjectsInit, h, null_mut(), 0),
        CKR_OPERATION_ACTIVE,
    );
    cases.check(
        "C_FindObjects with a NULL count pointer",
        call!(C_FindObjects, h, &mut copy, 1, null_mut()),
        CKR_ARGUMENTS_BAD,
    );
    cases.check("C_FindObjectsFinal", call!(C_FindObjectsFinal, h), CKR_OK);

    // NULL, zero and huge lengths. A failed C_DigestUpdate ends the operation, so each case
    // starts its own.
    let digest_init = |cases: &mut Cases| {
        cases.check(
            "C_DigestInit",
            call!(C_DigestInit, h, &mut mech(CKM_SHA256)),
            CKR_OK,
        )
    };
    digest_init(&mut cases);
    cases.check(
        "C_DigestUpdate with NULL data and a length",
        call!(C_DigestUpdate, h, null_mut(), 16),
        CKR_ARGUMENTS_BAD,
    );
    digest_init(&mut cases);
    cases.check(
        "C_DigestUpdate with a length beyond the address space",
        call!(C_DigestUpdate, h, data.as_ptr() as *mut u8, CK_ULONG::MAX),
        CKR_ARGUMENTS_BAD,
    );
    digest_init(&mut cases);
    cases.check(
        "C_DigestUpdate with zero length",
        call!(C_DigestUpdate, h, null_mut(), 0),
        CKR_OK,
    );
    cases.check(
        "C_DigestFinal with a NULL length pointer",
        call!(C_DigestFinal, h, out.as_mut_ptr(), null_mut()),
        CKR_ARGUMENTS_BAD,
    );
    digest_init(&mut cases);
    out_len = 4;
    cases.check(
        "C_DigestFinal into 4 bytes",
        call!(C_DigestFinal, h, out.as_mut_ptr(), &mut out_len),
        CKR_BUFFER_TOO_SMALL,
    );
    cases.check(
        "C_DigestFinal reports 32",
        if out_len == 32 {
            CKR_OK
        } else {
            CKR_GENERAL_ERROR
        },
        CKR_OK,
    );
    out_len = 32;
    cases.check(
        "C_DigestFinal into 32 bytes",
        call!(C_DigestFinal, h, out.as_mut_ptr(), &mut out_len),
        CKR_OK,
    );
    cases.check(
        "C_GenerateRandom with NULL and a length",
        call!(C_GenerateRandom, h, null_mut(), 8),
        CKR_ARGUMENTS_BAD,
    );
    cases.check(
        "C_GenerateRandom with a length beyond the address space",
        call!(C_GenerateRandom, h, out.as_mut_ptr(), CK_ULONG::MAX),
        CKR_ARGUMENTS_BAD,
    );
    cases.check(
        "C_SeedRandom",
        call!(C_SeedRandom, h, data.as_ptr() as *mut u8, 7),
        CKR_RANDOM_SEED_NOT_SUPPORTED,
    );
    let mut t = Tpl::new().bytes(CKA_LABEL, b"x");
    let (tp, _) = t.ptr();
    cases.check(
        "C_FindObjectsInit with a count beyond the address space",
        call!(C_FindObjectsInit, h, tp, CK_ULONG::MAX),
        CKR_ARGUMENTS_BAD,
    );

    // Raw RSA input of the wrong size (CKM_RSA_PKCS: at most k − 11 bytes).
    cases.check(
        "C_SignInit RSA_PKCS",
        init_with(sign_init, h, &mut mech(CKM_RSA_PKCS), key),
        CKR_OK,
    );
    let long = vec![1u8; 246];
    out_len = out.len() as CK_ULONG;
    cases.check(
        "C_Sign RSA_PKCS with k − 10 bytes",
        call!(
            C_Sign,
            h,
            long.as_ptr() as *mut u8,
            long.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut out_len
        ),
        CKR_DATA_LEN_RANGE,
    );
    cases.check(
        "C_DecryptInit RSA_PKCS",
        init_with(decrypt_init, h, &mut mech(CKM_RSA_PKCS), key),
        CKR_OK,
    );
    out_len = out.len() as CK_ULONG;
    cases.check(
        "C_Decrypt of a short ciphertext",
        call!(
            C_Decrypt,
            h,
            out.as_mut_ptr(),
            100,
            out.as_mut_ptr(),
            &mut out_len
        ),
        CKR_ENCRYPTED_DATA_LEN_RANGE,
    );

    // Mechanisms and their parameters.
    cases.check(
        "C_SignInit with CKM_MD5",
        init_with(sign_init, h, &mut mech(CKM_MD5_RSA_PKCS), key),
        CKR_MECHANISM_INVALID,
    );
    cases.check(
        "C_SignInit with a decryption-only mechanism",
        init_with(sign_init, h, &mut mech(CKM_RSA_PKCS_OAEP), key),
        CKR_MECHANISM_INVALID,
    );
    cases.check(
        "C_SignInit with a public key",
        init_with(sign_init, h, &mut mech(CKM_SHA256_RSA_PKCS), public),
        CKR_KEY_TYPE_INCONSISTENT,
    );
    cases.check(
        "C_VerifyInit with a private key",
        init_with(verify_init, h, &mut mech(CKM_SHA256_RSA_PKCS), key),
        CKR_KEY_TYPE_INCONSISTENT,
    );
    cases.check(
        "C_SignInit with a NULL mechanism",
        call!(C_SignInit, h, null_mut(), key),
        CKR_ARGUMENTS_BAD,
    );
    let mut p = pss(CKM_SHA256, CKG_MGF1_SHA256, 32);
    let mut m = CK_MECHANISM {
        mechanism: CKM_SHA256_RSA_PKCS_PSS,
        pParameter: &mut p as *mut _ as *mut c_void,
        ulParameterLen: (std::mem::size_of_val(&p) - 1) as CK_ULONG,
    };
    cases.check(
        "PSS parameters one byte short",
        init_with(sign_init, h, &mut m, key),
        CKR_MECHANISM_PARAM_INVALID,
    );
    cases.check(
        "CKM_RSA_PKCS_PSS without parameters",
        init_with(sign_init, h, &mut mech(CKM_RSA_PKCS_PSS), key),
        CKR_MECHANISM_PARAM_INVALID,
    );
    for (what, mut params) in [
        (
            "PSS hash SHA-384 under SHA256_RSA_PKCS_PSS",
            pss(CKM_SHA384, CKG_MGF1_SHA384, 48),
        ),
        ("PSS with an unknown MGF", pss(CKM_SHA256, 0x77, 32)),
        (
            "PSS with a hash that is not one",
            pss(CKM_RSA_PKCS, CKG_MGF1_SHA256, 32),
        ),
        (
            "PSS with a salt longer than the key allows",
            pss(CKM_SHA256, CKG_MGF1_SHA256, 300),
        ),
    ] {
        let mut m = mech_with(CKM_SHA256_RSA_PKCS_PSS, &mut params);
        cases.check(
            what,
            init_with(sign_init, h, &mut m, key),
            CKR_MECHANISM_PARAM_INVALID,
        );
    }
    let mut o = oaep(CKM_SHA256, CKG_MGF1_SHA256);
    let mut m = CK_MECHANISM {
        mechanism: CKM_RSA_PKCS_OAEP,
        pParameter: &mut o as *mut _ as *mut c_void,
        ulParameterLen: 8,
    };
    cases.check(
        "OAEP parameters of 8 bytes",
        init_with(decrypt_init, h, &mut m, key),
        CKR_MECHANISM_PARAM_INVALID,
    );
    for (what, mut params) in [
        ("OAEP with an unknown MGF", oaep(CKM_SHA256, 0x77)),
        (
            "OAEP with a hash that is not one",
            oaep(CKM_RSA_PKCS, CKG_MGF1_SHA256),
        ),
        (
            "OAEP label pointer NULL with a length",
            CK_RSA_PKCS_OAEP_PARAMS {
                ulSourceDataLen: 8,
                ..oaep(CKM_SHA256, CKG_MGF1_SHA256)
            },
        ),
        (
            "OAEP with an unknown source",
            CK_RSA_PKCS_OAEP_PARAMS {
                source: 2,
                ..oaep(CKM_SHA256, CKG_MGF1_SHA256)
            },
        ),
    ] {
        let mut m = mech_with(CKM_RSA_PKCS_OAEP, &mut params);
        cases.check(
            what,
            init_with(decrypt_init, h, &mut m, key),
            CKR_MECHANISM_PARAM_INVALID,
        );
    }

    // Templates.
    let create = |t: &mut Tpl| {
        let (tp, tn) = t.ptr();
        let mut o = 0;
        call!(C_CreateObject, h, tp, tn, &mut o)
    };
    let data_obj = || {
        Tpl::new()
            .ulong(CKA_CLASS, CKO_DATA)
            .bool(CKA_TOKEN, false)
            .bytes(CKA_VALUE, b"v")
    };
    cases.check(
        "C_CreateObject of a data object",
        create(&mut data_obj()),
        CKR_OK,
    );
    cases.check(
        "a template naming CKA_LABEL twice",
        create(&mut data_obj().bytes(CKA_LABEL, b"a").bytes(CKA_LABEL, b"b")),
        CKR_TEMPLATE_INCONSISTENT,
    );
    cases.check(
        "an unknown vendor attribute",
        create(&mut data_obj().bytes(CKA_VENDOR_DEFINED | 0x1234, b"?")),
        CKR_ATTRIBUTE_TYPE_INVALID,
    );
    cases.check(
        "a boolean attribute of 4 bytes",
        create(&mut data_obj().bytes(CKA_PRIVATE, &[0, 0, 0, 0])),
        CKR_ATTRIBUTE_VALUE_INVALID,
    );
    cases.check(
        "a class that does not exist",
        create(&mut Tpl::new().ulong(CKA_CLASS, 0x7777_0000)),
        CKR_ATTRIBUTE_VALUE_INVALID,
    );
    cases.check(
        "a template without CKA_CLASS",
        create(&mut Tpl::new().bytes(CKA_LABEL, b"x")),
        CKR_TEMPLATE_INCOMPLETE,
    );
    cases.check(
        "a public key without its modulus",
        create(
            &mut Tpl::new()
                .ulong(CKA_CLASS, CKO_PUBLIC_KEY)
                .ulong(CKA_KEY_TYPE, CKK_RSA)
                .bytes(CKA_PUBLIC_EXPONENT, &[1, 0, 1]),
        ),
        CKR_TEMPLATE_INCOMPLETE,
    );
    cases.check(
        "a key that claims CKA_LOCAL",
        create(
            &mut Tpl::new()
                .ulong(CKA_CLASS, CKO_PUBLIC_KEY)
                .ulong(CKA_KEY_TYPE, CKK_RSA)
                .bool(CKA_LOCAL, true)
                .bytes(CKA_MODULUS, &rsa_modulus())
                .bytes(CKA_PUBLIC_EXPONENT, &[1, 0, 1]),
        ),
        CKR_ATTRIBUTE_READ_ONLY,
    );
    let mut bad = [CK_ATTRIBUTE {
        type_: CKA_LABEL,
        pValue: null_mut(),
        ulValueLen: 5,
    }];
    let mut o = 0;
    cases.check(
        "an attribute with a NULL value and a length",
        call!(C_CreateObject, h, bad.as_mut_ptr(), 1, &mut o),
        CKR_ARGUMENTS_BAD,
    );
    cases.check(
        "C_CreateObject with a NULL template and a count",
        call!(C_CreateObject, h, null_mut(), 2, &mut o),
        CKR_ARGUMENTS_BAD,
    );
    let mut t = Tpl::new().bool(CKA_MODIFIABLE, true);
    let (tp, tn) = t.ptr();
    cases.check(
        "C_SetAttributeValue of CKA_MODIFIABLE",
        call!(C_SetAttributeValue, h, public, tp, tn),
        CKR_ATTRIBUTE_READ_ONLY,
    );
    let mut t = Tpl::new().bool(CKA_SENSITIVE, false);
    let (tp, tn) = t.ptr();
    cases.check(
        "C_SetAttributeValue turning CKA_SENSITIVE off",
        call!(C_SetAttributeValue, h, key, tp, tn),
        CKR_ATTRIBUTE_READ_ONLY,
    );

    cases.check("C_Logout", call!(C_Logout, h), CKR_OK);
    cases.check(
        "C_SignInit after C_Logout",
        init_with(sign_init, h, &mut mech(CKM_SHA256_RSA_PKCS), key),
        CKR_KEY_HANDLE_INVALID,
    );
    cases.check("C_Logout twice", call!(C_Logout, h), CKR_USER_NOT_LOGGED_IN);
    let _ = null::<u8>();
    cases.finish("sessions, handles, operations, parameters, templates");
}

fn rsa_modulus() -> Vec<u8> {
    use rsa::traits::PublicKeyParts;
    rsa_key().n_bytes().to_vec()
}
