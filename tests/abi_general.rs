//! C_Initialize rules, interface discovery, slots, sessions and login, through the C ABI.
#![allow(clippy::macro_metavars_in_unsafe)] // `call!` wraps calls through the C function list

mod common;

use std::ffi::c_void;

use common::*;
use cryptoki_sys::*;

extern "C" fn fake_create(_: *mut *mut c_void) -> CK_RV {
    CKR_OK
}
extern "C" fn fake_mutex(_: *mut c_void) -> CK_RV {
    CKR_OK
}

#[test]
fn interfaces_without_initialize() {
    let _g = serial();
    assert_eq!(
        keyfrag_pkcs11::C_GetFunctionList(std::ptr::null_mut()),
        CKR_ARGUMENTS_BAD
    );
    let mut n: CK_ULONG = 0;
    assert_eq!(
        keyfrag_pkcs11::C_GetInterfaceList(std::ptr::null_mut(), &mut n),
        CKR_OK
    );
    assert_eq!(n, 2);
    let mut one = [CK_INTERFACE {
        pInterfaceName: std::ptr::null_mut(),
        pFunctionList: std::ptr::null_mut(),
        flags: 0,
    }; 1];
    n = 1;
    assert_eq!(
        keyfrag_pkcs11::C_GetInterfaceList(one.as_mut_ptr(), &mut n),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(n, 2);
    let mut iface: *mut CK_INTERFACE = std::ptr::null_mut();
    assert_eq!(
        keyfrag_pkcs11::C_GetInterface(std::ptr::null_mut(), std::ptr::null_mut(), &mut iface, 0),
        CKR_OK
    );
    assert!(!iface.is_null());
    // SAFETY: the module returned a pointer to its static interface.
    let i = unsafe { *iface };
    let list = unsafe { &*(i.pFunctionList as *const CK_FUNCTION_LIST_3_0) };
    assert_eq!((list.version.major, list.version.minor), (3, 0));
    assert!(list.C_SessionCancel.is_some());
    let name = unsafe { std::ffi::CStr::from_ptr(i.pInterfaceName as *const std::ffi::c_char) };
    assert_eq!(name.to_str().unwrap(), "PKCS 11");
    let mut v = CK_VERSION {
        major: 2,
        minor: 40,
    };
    assert_eq!(
        keyfrag_pkcs11::C_GetInterface(c"PKCS 11".as_ptr() as *mut u8, &mut v, &mut iface, 0),
        CKR_OK
    );
    let list = unsafe { &*((*iface).pFunctionList as *const CK_FUNCTION_LIST) };
    assert_eq!((list.version.major, list.version.minor), (2, 40));
    let mut v = CK_VERSION { major: 9, minor: 9 };
    assert_eq!(
        keyfrag_pkcs11::C_GetInterface(std::ptr::null_mut(), &mut v, &mut iface, 0),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        keyfrag_pkcs11::C_GetInterface(
            c"Other".as_ptr() as *mut u8,
            std::ptr::null_mut(),
            &mut iface,
            0
        ),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        keyfrag_pkcs11::C_GetInterface(
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0
        ),
        CKR_ARGUMENTS_BAD
    );
    // Not initialised.
    let mut info = std::mem::MaybeUninit::<CK_INFO>::zeroed();
    assert_eq!(
        call!(C_GetInfo, info.as_mut_ptr()),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    let mut h = 0;
    assert_eq!(
        call!(
            C_OpenSession,
            0,
            CKF_SERIAL_SESSION,
            std::ptr::null_mut(),
            None,
            &mut h
        ),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_eq!(
        call!(C_Finalize, std::ptr::null_mut()),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_eq!(
        call!(
            C_GetOperationState,
            1,
            std::ptr::null_mut(),
            std::ptr::null_mut()
        ),
        CKR_FUNCTION_NOT_SUPPORTED
    );
}

#[test]
fn initialize_rules() {
    let _g = serial();
    let bed = keyfrag_cli::testbed::Testbed::start(keyfrag_cli::testbed::TestbedOptions::default());
    // Callbacks without CKF_OS_LOCKING_OK: we cannot use them.
    let mut args = CK_C_INITIALIZE_ARGS {
        CreateMutex: Some(fake_create),
        DestroyMutex: Some(fake_mutex),
        LockMutex: Some(fake_mutex),
        UnlockMutex: Some(fake_mutex),
        flags: 0,
        pReserved: std::ptr::null_mut(),
    };
    assert_eq!(
        call!(C_Initialize, &mut args as *mut _ as *mut c_void),
        CKR_CANT_LOCK
    );
    args.DestroyMutex = None;
    args.flags = CKF_OS_LOCKING_OK;
    assert_eq!(
        call!(C_Initialize, &mut args as *mut _ as *mut c_void),
        CKR_ARGUMENTS_BAD
    );
    // A bad config path fails cleanly.
    assert_eq!(
        initialize(
            std::path::Path::new("/nonexistent/keyfrag.toml"),
            CKF_OS_LOCKING_OK
        ),
        CKR_GENERAL_ERROR
    );
    // Callbacks with OS locking are fine; pReserved carries the config.
    let reserved = std::ffi::CString::new(format!("config={}", bed.config_path.display())).unwrap();
    args.DestroyMutex = Some(fake_mutex);
    args.pReserved = reserved.as_ptr() as *mut c_void;
    assert_eq!(
        call!(C_Initialize, &mut args as *mut _ as *mut c_void),
        CKR_OK
    );
    assert_eq!(
        initialize(&bed.config_path, 0),
        CKR_CRYPTOKI_ALREADY_INITIALIZED
    );
    let mut info = std::mem::MaybeUninit::<CK_INFO>::zeroed();
    assert_eq!(call!(C_GetInfo, info.as_mut_ptr()), CKR_OK);
    let info = unsafe { info.assume_init() };
    assert_eq!(
        (info.cryptokiVersion.major, info.cryptokiVersion.minor),
        (3, 0)
    );
    assert_eq!(&info.manufacturerID[..8], b"keyfrag ");
    assert_eq!(
        call!(C_Finalize, std::ptr::dangling_mut::<c_void>()),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(call!(C_Finalize, std::ptr::null_mut()), CKR_OK);
    // NULL args, and no OS threads.
    assert_eq!(
        initialize(&bed.config_path, CKF_LIBRARY_CANT_CREATE_OS_THREADS),
        CKR_OK
    );
    assert_eq!(call!(C_Finalize, std::ptr::null_mut()), CKR_OK);
}

#[test]
fn slots_and_token_info() {
    let _f = Fixture::new();
    let mut n: CK_ULONG = 0;
    assert_eq!(
        call!(C_GetSlotList, CK_TRUE, std::ptr::null_mut(), &mut n),
        CKR_OK
    );
    assert_eq!(n, 1);
    let mut slots = [99 as CK_SLOT_ID; 1];
    assert_eq!(
        call!(C_GetSlotList, CK_FALSE, slots.as_mut_ptr(), &mut n),
        CKR_OK
    );
    assert_eq!(slots[0], 0);
    let mut si = std::mem::MaybeUninit::<CK_SLOT_INFO>::zeroed();
    assert_eq!(call!(C_GetSlotInfo, 0, si.as_mut_ptr()), CKR_OK);
    assert_eq!(
        unsafe { si.assume_init() }.flags & CKF_TOKEN_PRESENT,
        CKF_TOKEN_PRESENT
    );
    assert_eq!(
        call!(C_GetSlotInfo, 7, si.as_mut_ptr()),
        CKR_SLOT_ID_INVALID
    );
    let mut ti = std::mem::MaybeUninit::<CK_TOKEN_INFO>::zeroed();
    assert_eq!(call!(C_GetTokenInfo, 0, ti.as_mut_ptr()), CKR_OK);
    let ti = unsafe { ti.assume_init() };
    assert_eq!(&ti.label[..12], b"keyfrag-test");
    assert!(ti.label[12..].iter().all(|b| *b == b' '));
    for f in [
        CKF_LOGIN_REQUIRED,
        CKF_TOKEN_INITIALIZED,
        CKF_USER_PIN_INITIALIZED,
        CKF_RNG,
    ] {
        assert_eq!(ti.flags & f, f, "flag {f:#x}");
    }
    assert_eq!(ti.ulMaxSessionCount, CK_EFFECTIVELY_INFINITE);
    assert_eq!(ti.ulMaxRwSessionCount, CK_EFFECTIVELY_INFINITE);
    assert!(ti.ulMaxPinLen >= 64);
    assert_eq!(ti.ulMinPinLen, 4);
    assert_eq!(&ti.model[..8], b"keyfrag ");
    assert_eq!(ti.ulTotalPublicMemory, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(
        call!(C_GetTokenInfo, 0, std::ptr::null_mut()),
        CKR_ARGUMENTS_BAD
    );

    let mut n: CK_ULONG = 0;
    assert_eq!(
        call!(C_GetMechanismList, 0, std::ptr::null_mut(), &mut n),
        CKR_OK
    );
    let mut mechs = vec![0 as CK_MECHANISM_TYPE; n as usize];
    let mut short: CK_ULONG = 1;
    assert_eq!(
        call!(C_GetMechanismList, 0, mechs.as_mut_ptr(), &mut short),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(short, n);
    assert_eq!(
        call!(C_GetMechanismList, 0, mechs.as_mut_ptr(), &mut n),
        CKR_OK
    );
    for m in [
        CKM_RSA_PKCS,
        CKM_RSA_PKCS_PSS,
        CKM_SHA256_RSA_PKCS,
        CKM_RSA_PKCS_OAEP,
        CKM_RSA_X_509,
        CKM_SHA256,
    ] {
        assert!(mechs.contains(&m), "mechanism {m:#x}");
    }
    let mut mi = std::mem::MaybeUninit::<CK_MECHANISM_INFO>::zeroed();
    assert_eq!(
        call!(C_GetMechanismInfo, 0, CKM_RSA_PKCS_PSS, mi.as_mut_ptr()),
        CKR_OK
    );
    let mi = unsafe { mi.assume_init() };
    assert_eq!((mi.ulMinKeySize, mi.ulMaxKeySize), (1024, 4096));
    assert_eq!(mi.flags, CKF_SIGN | CKF_VERIFY);
    let mut mi = std::mem::MaybeUninit::<CK_MECHANISM_INFO>::zeroed();
    assert_eq!(
        call!(C_GetMechanismInfo, 0, CKM_MD5, mi.as_mut_ptr()),
        CKR_MECHANISM_INVALID
    );
}

fn session_state(h: CK_SESSION_HANDLE) -> CK_STATE {
    let mut si = std::mem::MaybeUninit::<CK_SESSION_INFO>::zeroed();
    assert_eq!(call!(C_GetSessionInfo, h, si.as_mut_ptr()), CKR_OK);
    unsafe { si.assume_init() }.state
}

#[test]
fn sessions_and_login() {
    let _f = Fixture::new();
    let mut h = 0;
    assert_eq!(
        call!(C_OpenSession, 0, 0, std::ptr::null_mut(), None, &mut h),
        CKR_SESSION_PARALLEL_NOT_SUPPORTED
    );
    assert_eq!(
        call!(
            C_OpenSession,
            3,
            CKF_SERIAL_SESSION,
            std::ptr::null_mut(),
            None,
            &mut h
        ),
        CKR_SLOT_ID_INVALID
    );
    assert_eq!(
        call!(
            C_OpenSession,
            0,
            CKF_SERIAL_SESSION,
            std::ptr::null_mut(),
            None,
            std::ptr::null_mut()
        ),
        CKR_ARGUMENTS_BAD
    );
    let ro = open_session(false);
    let rw = open_session(true);
    assert_ne!(ro, rw);
    assert_eq!(session_state(ro), CKS_RO_PUBLIC_SESSION);
    assert_eq!(session_state(rw), CKS_RW_PUBLIC_SESSION);
    assert_eq!(call!(C_CloseSession, 424242), CKR_SESSION_HANDLE_INVALID);
    assert_eq!(call!(C_Logout, ro), CKR_USER_NOT_LOGGED_IN);
    assert_eq!(login(ro, 7, USER_PIN), CKR_USER_TYPE_INVALID);
    assert_eq!(
        login(ro, CKU_CONTEXT_SPECIFIC, USER_PIN),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(login(rw, CKU_SO, SO_PIN), CKR_SESSION_READ_ONLY_EXISTS);
    assert_eq!(login(ro, CKU_USER, "9999"), CKR_PIN_INCORRECT);
    assert_eq!(
        call!(C_Login, ro, CKU_USER, std::ptr::null_mut(), 4),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(login(ro, CKU_USER, USER_PIN), CKR_OK);
    assert_eq!(session_state(ro), CKS_RO_USER_FUNCTIONS);
    assert_eq!(session_state(rw), CKS_RW_USER_FUNCTIONS);
    assert_eq!(login(rw, CKU_USER, USER_PIN), CKR_USER_ALREADY_LOGGED_IN);
    assert_eq!(
        login(rw, CKU_SO, SO_PIN),
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN
    );
    // C_SessionCancel works (SunPKCS11 calls it).
    let list3 = {
        let mut iface: *mut CK_INTERFACE = std::ptr::null_mut();
        assert_eq!(
            keyfrag_pkcs11::C_GetInterface(
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut iface,
                0
            ),
            CKR_OK
        );
        unsafe { &*((*iface).pFunctionList as *const CK_FUNCTION_LIST_3_0) }
    };
    assert_eq!(
        unsafe { (list3.C_SessionCancel.unwrap())(ro, CKF_SIGN | CKF_FIND_OBJECTS) },
        CKR_OK
    );
    // Closing the last session logs out.
    assert_eq!(call!(C_CloseSession, ro), CKR_OK);
    assert_eq!(session_state(rw), CKS_RW_USER_FUNCTIONS);
    assert_eq!(call!(C_CloseSession, rw), CKR_OK);
    let again = open_session(true);
    assert_eq!(session_state(again), CKS_RW_PUBLIC_SESSION);
    // SO: read/write sessions only.
    assert_eq!(login(again, CKU_SO, SO_PIN), CKR_OK);
    assert_eq!(session_state(again), CKS_RW_SO_FUNCTIONS);
    let mut h = 0;
    assert_eq!(
        call!(
            C_OpenSession,
            0,
            CKF_SERIAL_SESSION,
            std::ptr::null_mut(),
            None,
            &mut h
        ),
        CKR_SESSION_READ_WRITE_SO_EXISTS
    );
    assert_eq!(call!(C_Logout, again), CKR_OK);
    // C_InitToken refuses while sessions are open.
    let mut label = [b' '; 32];
    label[..3].copy_from_slice(b"new");
    assert_eq!(
        call!(
            C_InitToken,
            0,
            SO_PIN.as_ptr() as *mut u8,
            SO_PIN.len() as CK_ULONG,
            label.as_mut_ptr()
        ),
        CKR_SESSION_EXISTS
    );
    assert_eq!(call!(C_CloseAllSessions, 0), CKR_OK);
    assert_eq!(
        call!(C_GetSessionInfo, again, std::ptr::null_mut()),
        CKR_SESSION_HANDLE_INVALID
    );
    // Random.
    let s = open_session(false);
    let mut buf = [0u8; 32];
    assert_eq!(call!(C_GenerateRandom, s, buf.as_mut_ptr(), 32), CKR_OK);
    assert_ne!(buf, [0u8; 32]);
    assert_eq!(
        call!(C_GenerateRandom, s, std::ptr::null_mut(), 32),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(C_SeedRandom, s, buf.as_mut_ptr(), 32),
        CKR_RANDOM_SEED_NOT_SUPPORTED
    );
    // Digest, with the two-call rule.
    let mut m = mech(CKM_SHA256);
    assert_eq!(call!(C_DigestInit, s, &mut m), CKR_OK);
    assert_eq!(call!(C_DigestInit, s, &mut m), CKR_OPERATION_ACTIVE);
    let mut len: CK_ULONG = 0;
    assert_eq!(
        call!(
            C_Digest,
            s,
            b"abc".as_ptr() as *mut u8,
            3,
            std::ptr::null_mut(),
            &mut len
        ),
        CKR_OK
    );
    assert_eq!(len, 32);
    let mut out = [0u8; 32];
    len = 10;
    assert_eq!(
        call!(
            C_Digest,
            s,
            b"abc".as_ptr() as *mut u8,
            3,
            out.as_mut_ptr(),
            &mut len
        ),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(len, 32);
    assert_eq!(
        call!(
            C_Digest,
            s,
            b"abc".as_ptr() as *mut u8,
            3,
            out.as_mut_ptr(),
            &mut len
        ),
        CKR_OK
    );
    assert_eq!(out[..4], [0xba, 0x78, 0x16, 0xbf]);
    assert_eq!(
        call!(C_DigestFinal, s, out.as_mut_ptr(), &mut len),
        CKR_OPERATION_NOT_INITIALIZED
    );
}
