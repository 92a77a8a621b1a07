//! Shared helpers for the tests that call the module through its C function list.
#![allow(dead_code, clippy::macro_metavars_in_unsafe)]

use std::ffi::{CString, c_void};
use std::sync::{Mutex, MutexGuard, OnceLock};

use cryptoki_sys::*;
use keyfrag_cli::testbed::{Testbed, TestbedOptions};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};

pub const USER_PIN: &str = "1234";
pub const SO_PIN: &str = "12345678";

/// The 2.40 function list, from the exported C_GetFunctionList.
pub fn fl() -> &'static CK_FUNCTION_LIST {
    let mut p: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
    assert_eq!(keyfrag_pkcs11::C_GetFunctionList(&mut p), CKR_OK);
    // SAFETY: the module returns a pointer to its static function list.
    unsafe { &*p }
}

/// Call a function of the list through its C signature (tests pass valid pointers).
#[macro_export]
macro_rules! call {
    ($name:ident $(, $a:expr)* $(,)?) => {
        unsafe { ($crate::common::fl().$name.expect(stringify!($name)))($($a),*) }
    };
}

/// The module's state is process-global: tests that initialise it run one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn initialize(config: &std::path::Path, flags: CK_FLAGS) -> CK_RV {
    let reserved = CString::new(format!("config={}", config.display())).unwrap();
    let mut args = CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags,
        pReserved: reserved.as_ptr() as *mut c_void,
    };
    call!(C_Initialize, &mut args as *mut _ as *mut c_void)
}

/// A running testbed with the module initialised on it; finalised on drop.
pub struct Fixture {
    pub bed: Testbed,
    _guard: MutexGuard<'static, ()>,
}

impl Fixture {
    pub fn new() -> Fixture {
        let guard = serial();
        let bed = Testbed::start(TestbedOptions::default());
        assert_eq!(initialize(&bed.config_path, CKF_OS_LOCKING_OK), CKR_OK);
        Fixture { bed, _guard: guard }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = call!(C_Finalize, std::ptr::null_mut());
    }
}

pub fn open_session(rw: bool) -> CK_SESSION_HANDLE {
    let mut h = 0;
    let flags = CKF_SERIAL_SESSION | if rw { CKF_RW_SESSION } else { 0 };
    assert_eq!(
        call!(C_OpenSession, 0, flags, std::ptr::null_mut(), None, &mut h),
        CKR_OK
    );
    h
}

pub fn login(h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &str) -> CK_RV {
    call!(
        C_Login,
        h,
        user,
        pin.as_ptr() as *mut u8,
        pin.len() as CK_ULONG
    )
}

/// A template whose values it owns.
#[derive(Default)]
pub struct Tpl {
    vals: Vec<Vec<u8>>,
    types: Vec<CK_ATTRIBUTE_TYPE>,
    attrs: Vec<CK_ATTRIBUTE>,
}

impl Tpl {
    pub fn new() -> Tpl {
        Tpl::default()
    }
    pub fn bytes(mut self, t: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Tpl {
        self.types.push(t);
        self.vals.push(v.to_vec());
        self
    }
    pub fn ulong(self, t: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> Tpl {
        self.bytes(t, &v.to_ne_bytes())
    }
    pub fn bool(self, t: CK_ATTRIBUTE_TYPE, v: bool) -> Tpl {
        self.bytes(t, &[v as u8])
    }
    /// The C array (valid while self lives and is not changed).
    pub fn ptr(&mut self) -> (*mut CK_ATTRIBUTE, CK_ULONG) {
        self.attrs = self
            .types
            .iter()
            .zip(self.vals.iter_mut())
            .map(|(t, v)| CK_ATTRIBUTE {
                type_: *t,
                pValue: if v.is_empty() {
                    std::ptr::null_mut()
                } else {
                    v.as_mut_ptr() as *mut c_void
                },
                ulValueLen: v.len() as CK_ULONG,
            })
            .collect();
        (self.attrs.as_mut_ptr(), self.attrs.len() as CK_ULONG)
    }
}

/// One RSA-2048 key per test binary (generation is slow).
pub fn rsa_key() -> &'static rsa::PrivateKey {
    static KEY: OnceLock<rsa::PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).expect("rsa keygen"))
}

fn be(x: &rsa::BoxedUint) -> Vec<u8> {
    x.to_be_bytes_trimmed_vartime().to_vec()
}

/// Import `key` as a private key (and its public key): returns (private, public) handles.
pub fn import_rsa(
    h: CK_SESSION_HANDLE,
    key: &rsa::PrivateKey,
    token: bool,
    id: &[u8],
) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let n = key.n_bytes().to_vec();
    let e = key.e_bytes().to_vec();
    let d = be(key.d());
    let p = be(key.primes()[0].as_ref());
    let q = be(key.primes()[1].as_ref());
    let mut priv_t = Tpl::new()
        .ulong(CKA_CLASS, CKO_PRIVATE_KEY)
        .ulong(CKA_KEY_TYPE, CKK_RSA)
        .bool(CKA_TOKEN, token)
        .bytes(CKA_ID, id)
        .bytes(CKA_LABEL, b"test key")
        .bool(CKA_SIGN, true)
        .bool(CKA_DECRYPT, true)
        .bytes(CKA_MODULUS, &n)
        .bytes(CKA_PUBLIC_EXPONENT, &e)
        .bytes(CKA_PRIVATE_EXPONENT, &d)
        .bytes(CKA_PRIME_1, &p)
        .bytes(CKA_PRIME_2, &q);
    let (tp, tn) = priv_t.ptr();
    let mut hp = 0;
    assert_eq!(
        call!(C_CreateObject, h, tp, tn, &mut hp),
        CKR_OK,
        "import private key"
    );
    let mut pub_t = Tpl::new()
        .ulong(CKA_CLASS, CKO_PUBLIC_KEY)
        .ulong(CKA_KEY_TYPE, CKK_RSA)
        .bool(CKA_TOKEN, token)
        .bytes(CKA_ID, id)
        .bool(CKA_VERIFY, true)
        .bool(CKA_ENCRYPT, true)
        .bytes(CKA_MODULUS, &n)
        .bytes(CKA_PUBLIC_EXPONENT, &e);
    let (tp, tn) = pub_t.ptr();
    let mut hq = 0;
    assert_eq!(
        call!(C_CreateObject, h, tp, tn, &mut hq),
        CKR_OK,
        "import public key"
    );
    (hp, hq)
}

pub fn mech(m: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: m,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    }
}

/// A mechanism with a parameter struct (the struct must outlive the call).
pub fn mech_with<T>(m: CK_MECHANISM_TYPE, p: &mut T) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: m,
        pParameter: p as *mut T as *mut c_void,
        ulParameterLen: size_of::<T>() as CK_ULONG,
    }
}

/// C_SignInit + C_Sign with the two-call rule.
pub fn sign(
    h: CK_SESSION_HANDLE,
    m: &mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    let rv = call!(C_SignInit, h, m, key);
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut len: CK_ULONG = 0;
    let rv = call!(
        C_Sign,
        h,
        data.as_ptr() as *mut u8,
        data.len() as CK_ULONG,
        std::ptr::null_mut(),
        &mut len
    );
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut sig = vec![0u8; len as usize];
    let rv = call!(
        C_Sign,
        h,
        data.as_ptr() as *mut u8,
        data.len() as CK_ULONG,
        sig.as_mut_ptr(),
        &mut len
    );
    if rv != CKR_OK {
        return Err(rv);
    }
    sig.truncate(len as usize);
    Ok(sig)
}

pub fn verify(
    h: CK_SESSION_HANDLE,
    m: &mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
    sig: &[u8],
) -> CK_RV {
    let rv = call!(C_VerifyInit, h, m, key);
    if rv != CKR_OK {
        return rv;
    }
    call!(
        C_Verify,
        h,
        data.as_ptr() as *mut u8,
        data.len() as CK_ULONG,
        sig.as_ptr() as *mut u8,
        sig.len() as CK_ULONG
    )
}

pub fn decrypt(
    h: CK_SESSION_HANDLE,
    m: &mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    c: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    let rv = call!(C_DecryptInit, h, m, key);
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut out = vec![0u8; 512];
    let mut len = out.len() as CK_ULONG;
    let rv = call!(
        C_Decrypt,
        h,
        c.as_ptr() as *mut u8,
        c.len() as CK_ULONG,
        out.as_mut_ptr(),
        &mut len
    );
    if rv != CKR_OK {
        return Err(rv);
    }
    out.truncate(len as usize);
    Ok(out)
}

/// C_GetAttributeValue for one attribute: (rv, value or length).
pub fn get_attr(
    h: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    t: CK_ATTRIBUTE_TYPE,
) -> (CK_RV, Option<Vec<u8>>) {
    let mut a = CK_ATTRIBUTE {
        type_: t,
        pValue: std::ptr::null_mut(),
        ulValueLen: 0,
    };
    let rv = call!(C_GetAttributeValue, h, o, &mut a, 1);
    if rv != CKR_OK {
        if rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID {
            assert_eq!(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
        }
        return (rv, None);
    }
    let mut v = vec![0u8; a.ulValueLen as usize];
    a.pValue = v.as_mut_ptr() as *mut c_void;
    let rv = call!(C_GetAttributeValue, h, o, &mut a, 1);
    (rv, Some(v))
}

pub fn find(h: CK_SESSION_HANDLE, tpl: &mut Tpl) -> Vec<CK_OBJECT_HANDLE> {
    let (tp, tn) = tpl.ptr();
    assert_eq!(call!(C_FindObjectsInit, h, tp, tn), CKR_OK);
    let mut out = Vec::new();
    loop {
        let mut buf = [0 as CK_OBJECT_HANDLE; 2];
        let mut n: CK_ULONG = 0;
        assert_eq!(call!(C_FindObjects, h, buf.as_mut_ptr(), 2, &mut n), CKR_OK);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    assert_eq!(call!(C_FindObjectsFinal, h), CKR_OK);
    out
}
