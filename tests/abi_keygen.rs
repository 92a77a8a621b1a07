//! C_GenerateKeyPair through the C ABI against a 3-cell testbed (RSA-1024, which the testbed's
//! token allows): session and token pairs and their attributes, a signature by the generated
//! key verified with the `rsa` crate, the exact refusals for bad templates and sessions,
//! cancellation from another thread, and a cell failing mid-generation.
//!
//! The refusal tests never reach the cells' generation protocol; the others need it.
#![allow(clippy::macro_metavars_in_unsafe)] // `call!` wraps calls through the C function list

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use cryptoki_sys::*;
use rsa::sha2::Sha256;

const BITS: CK_ULONG = 1024;

fn public_template(bits: CK_ULONG, token: bool, id: &[u8]) -> Tpl {
    Tpl::new()
        .ulong(CKA_CLASS, CKO_PUBLIC_KEY)
        .ulong(CKA_KEY_TYPE, CKK_RSA)
        .bool(CKA_TOKEN, token)
        .ulong(CKA_MODULUS_BITS, bits)
        .bytes(CKA_PUBLIC_EXPONENT, &[1, 0, 1])
        .bytes(CKA_ID, id)
        .bytes(CKA_LABEL, b"generated")
        .bool(CKA_VERIFY, true)
        .bool(CKA_ENCRYPT, true)
}

/// What pkcs11-tool sends for the private half (plus CKA_TOKEN as asked).
fn private_template(token: bool, id: &[u8]) -> Tpl {
    Tpl::new()
        .ulong(CKA_CLASS, CKO_PRIVATE_KEY)
        .ulong(CKA_KEY_TYPE, CKK_RSA)
        .bool(CKA_TOKEN, token)
        .bool(CKA_PRIVATE, true)
        .bool(CKA_SENSITIVE, true)
        .bytes(CKA_ID, id)
        .bytes(CKA_LABEL, b"generated")
        .bool(CKA_SIGN, true)
        .bool(CKA_DECRYPT, true)
}

/// C_GenerateKeyPair with CKM_RSA_PKCS_KEY_PAIR_GEN: (public, private) handles.
fn generate(
    h: CK_SESSION_HANDLE,
    public: &mut Tpl,
    private: &mut Tpl,
) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), CK_RV> {
    let (pt, pn) = public.ptr();
    let (qt, qn) = private.ptr();
    let (mut hp, mut hq) = (0, 0);
    let mut m = mech(CKM_RSA_PKCS_KEY_PAIR_GEN);
    match call!(
        C_GenerateKeyPair,
        h,
        &mut m,
        pt,
        pn,
        qt,
        qn,
        &mut hp,
        &mut hq
    ) {
        CKR_OK => Ok((hp, hq)),
        rv => Err(rv),
    }
}

fn logged_in_rw() -> CK_SESSION_HANDLE {
    let h = open_session(true);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    h
}

/// The key uids the cells hold.
fn cell_keys(f: &Fixture) -> Vec<String> {
    let keys = f.bed.cluster().list_keys().expect("list keys");
    keys.into_iter().map(|k| k.uid).collect()
}

fn key_objects(h: CK_SESSION_HANDLE) -> usize {
    find(h, &mut Tpl::new().ulong(CKA_CLASS, CKO_PRIVATE_KEY)).len()
        + find(h, &mut Tpl::new().ulong(CKA_CLASS, CKO_PUBLIC_KEY)).len()
}

/// C_SessionCancel, from the 3.0 function list (the 2.40 list has no such entry).
fn session_cancel(h: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CK_RV {
    let mut iface: *mut CK_INTERFACE = std::ptr::null_mut();
    let rv =
        keyfrag_pkcs11::C_GetInterface(std::ptr::null_mut(), std::ptr::null_mut(), &mut iface, 0);
    assert_eq!(rv, CKR_OK);
    // SAFETY: the default interface is the module's static "PKCS 11" 3.0 interface.
    let list = unsafe { &*((*iface).pFunctionList as *const CK_FUNCTION_LIST_3_0) };
    // SAFETY: calling the module's entry point with a plain handle and flags.
    unsafe { (list.C_SessionCancel.expect("C_SessionCancel"))(h, flags) }
}

/// The `rsa` crate's view of a generated public key object.
fn rsa_public(h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE) -> rsa::PublicKey {
    let n = get_attr(h, o, CKA_MODULUS).1.unwrap();
    let e = get_attr(h, o, CKA_PUBLIC_EXPONENT).1.unwrap();
    rsa::PublicKey::new_with_size_limits(
        rsa::BoxedUint::from_be_slice_vartime(&n),
        rsa::BoxedUint::from_be_slice_vartime(&e),
        1024..=4096,
    )
    .unwrap()
}

#[test]
fn mechanism_list_and_info() {
    let _f = Fixture::new();
    let mut n: CK_ULONG = 0;
    assert_eq!(
        call!(C_GetMechanismList, 0, std::ptr::null_mut(), &mut n),
        CKR_OK
    );
    let mut list = vec![0; n as usize];
    assert_eq!(
        call!(C_GetMechanismList, 0, list.as_mut_ptr(), &mut n),
        CKR_OK
    );
    assert!(list.contains(&CKM_RSA_PKCS_KEY_PAIR_GEN));
    let mut info = std::mem::MaybeUninit::<CK_MECHANISM_INFO>::zeroed();
    assert_eq!(
        call!(
            C_GetMechanismInfo,
            0,
            CKM_RSA_PKCS_KEY_PAIR_GEN,
            info.as_mut_ptr()
        ),
        CKR_OK
    );
    // SAFETY: written by the successful call.
    let info = unsafe { info.assume_init() };
    assert_eq!(info.flags, CKF_GENERATE_KEY_PAIR);
    // The testbed token allows RSA-1024.
    assert_eq!((info.ulMinKeySize, info.ulMaxKeySize), (1024, 4096));
}

/// Every refusal is decided before the cells are asked: no key, no object appears.
#[test]
fn template_and_session_refusals() {
    let f = Fixture::new();
    let rw = logged_in_rw();
    let id = b"bad";
    let with_public = |mut t: Tpl| generate(rw, &mut t, &mut private_template(true, id));
    // Sizes: 1000 is no size the cells generate; missing bits.
    assert_eq!(
        with_public(public_template(1000, true, id)),
        Err(CKR_KEY_SIZE_RANGE)
    );
    assert_eq!(
        with_public(public_template(8192, true, id)),
        Err(CKR_KEY_SIZE_RANGE)
    );
    let no_bits = Tpl::new()
        .ulong(CKA_CLASS, CKO_PUBLIC_KEY)
        .bytes(CKA_PUBLIC_EXPONENT, &[1, 0, 1]);
    assert_eq!(with_public(no_bits), Err(CKR_TEMPLATE_INCOMPLETE));
    // e = 3: the protocol makes e = 65537 only.
    let e3 = Tpl::new()
        .ulong(CKA_MODULUS_BITS, BITS)
        .bytes(CKA_PUBLIC_EXPONENT, &[3]);
    assert_eq!(with_public(e3), Err(CKR_ATTRIBUTE_VALUE_INVALID));
    // An extractable or non-sensitive private key cannot exist here.
    let mut p = public_template(BITS, true, id);
    assert_eq!(
        generate(
            rw,
            &mut p,
            &mut private_template(true, id).bool(CKA_EXTRACTABLE, true)
        ),
        Err(CKR_ATTRIBUTE_VALUE_INVALID)
    );
    assert_eq!(
        generate(
            rw,
            &mut p,
            &mut Tpl::new().bool(CKA_SENSITIVE, false).bool(CKA_TOKEN, true)
        ),
        Err(CKR_ATTRIBUTE_VALUE_INVALID)
    );
    // Key material in a template; a class that contradicts the template's role.
    assert_eq!(
        generate(
            rw,
            &mut p,
            &mut Tpl::new()
                .bool(CKA_TOKEN, true)
                .bytes(CKA_PRIVATE_EXPONENT, &[1])
        ),
        Err(CKR_ATTRIBUTE_READ_ONLY)
    );
    assert_eq!(
        generate(rw, &mut p, &mut Tpl::new().ulong(CKA_CLASS, CKO_PUBLIC_KEY)),
        Err(CKR_TEMPLATE_INCONSISTENT)
    );
    // Wrong mechanism, NULL output.
    let (pt, pn) = p.ptr();
    let mut q = private_template(true, id);
    let (qt, qn) = q.ptr();
    let (mut hp, mut hq) = (0, 0);
    let mut m = mech(CKM_RSA_PKCS);
    assert_eq!(
        call!(
            C_GenerateKeyPair,
            rw,
            &mut m,
            pt,
            pn,
            qt,
            qn,
            &mut hp,
            &mut hq
        ),
        CKR_MECHANISM_INVALID
    );
    let mut m = mech(CKM_RSA_PKCS_KEY_PAIR_GEN);
    assert_eq!(
        call!(
            C_GenerateKeyPair,
            rw,
            &mut m,
            pt,
            pn,
            qt,
            qn,
            &mut hp,
            std::ptr::null_mut()
        ),
        CKR_ARGUMENTS_BAD
    );
    // A token key needs a R/W session.
    let ro = open_session(false);
    assert_eq!(
        generate(
            ro,
            &mut public_template(BITS, true, id),
            &mut private_template(true, id)
        ),
        Err(CKR_SESSION_READ_ONLY)
    );
    // Without the user's login, no key (session or token).
    assert_eq!(call!(C_Logout, rw), CKR_OK);
    for token in [false, true] {
        assert_eq!(
            generate(
                rw,
                &mut public_template(BITS, token, id),
                &mut private_template(token, id)
            ),
            Err(CKR_USER_NOT_LOGGED_IN)
        );
    }
    assert_eq!(login(rw, CKU_USER, USER_PIN), CKR_OK);
    assert_eq!(key_objects(rw), 0);
    assert!(cell_keys(&f).is_empty());
}

/// Generated pairs carry the attributes of a key born on the token and sign standard
/// signatures; `token` picks token or session objects.
fn generate_sign_verify(f: &Fixture, token: bool) {
    let h = logged_in_rw();
    let id = if token { b"gen-token" } else { b"gen-sessn" };
    let (pubk, privk) = generate(
        h,
        &mut public_template(BITS, token, id),
        &mut private_template(token, id),
    )
    .expect("C_GenerateKeyPair");
    for o in [pubk, privk] {
        assert_eq!(get_attr(h, o, CKA_ID).1.unwrap(), id);
        assert_eq!(get_attr(h, o, CKA_LABEL).1.unwrap(), b"generated");
        assert_eq!(get_attr(h, o, CKA_LOCAL).1.unwrap(), [1]);
        assert_eq!(get_attr(h, o, CKA_TOKEN).1.unwrap(), [token as u8]);
        assert_eq!(
            get_attr(h, o, CKA_KEY_TYPE).1.unwrap(),
            CKK_RSA.to_ne_bytes()
        );
        assert_eq!(
            get_attr(h, o, CKA_KEY_GEN_MECHANISM).1.unwrap(),
            CKM_RSA_PKCS_KEY_PAIR_GEN.to_ne_bytes()
        );
        assert_eq!(get_attr(h, o, CKA_PUBLIC_EXPONENT).1.unwrap(), [1, 0, 1]);
        assert!(!get_attr(h, o, CKA_PUBLIC_KEY_INFO).1.unwrap().is_empty());
    }
    let n = get_attr(h, pubk, CKA_MODULUS).1.unwrap();
    assert_eq!(n.len(), 128);
    assert!(n[0] & 0x80 != 0, "exactly 1024 bits");
    assert_eq!(get_attr(h, privk, CKA_MODULUS).1.unwrap(), n);
    assert_eq!(
        get_attr(h, pubk, CKA_MODULUS_BITS).1.unwrap(),
        BITS.to_ne_bytes()
    );
    for (t, v) in [
        (CKA_SENSITIVE, 1u8),
        (CKA_ALWAYS_SENSITIVE, 1),
        (CKA_EXTRACTABLE, 0),
        (CKA_NEVER_EXTRACTABLE, 1),
        (CKA_PRIVATE, 1),
        (CKA_SIGN, 1),
    ] {
        assert_eq!(get_attr(h, privk, t).1.unwrap(), [v], "attribute {t:#x}");
    }
    for t in [
        CKA_PRIVATE_EXPONENT,
        CKA_PRIME_1,
        CKA_PRIME_2,
        CKA_EXPONENT_1,
        CKA_EXPONENT_2,
        CKA_COEFFICIENT,
    ] {
        assert_eq!(get_attr(h, privk, t).0, CKR_ATTRIBUTE_SENSITIVE, "{t:#x}");
    }
    // The cells hold exactly this key, leased only if it is a session key.
    let keys = f.bed.cluster().list_keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].bits, 1024);
    assert_eq!(keys[0].lease_remaining_secs.is_some(), !token);

    // Sign through C_Sign; verify with the `rsa` crate from the public object's attributes.
    let msg = b"signed by a key that never existed whole";
    let sig = sign(h, &mut mech(CKM_SHA256_RSA_PKCS), privk, msg).unwrap();
    rsa_public(h, pubk)
        .pkcs1v15_verify::<Sha256>(msg, &sig)
        .unwrap();
    assert_eq!(
        verify(h, &mut mech(CKM_SHA256_RSA_PKCS), pubk, msg, &sig),
        CKR_OK
    );
}

#[test]
fn session_key_pair() {
    let f = Fixture::new();
    generate_sign_verify(&f, false);
    // Closing the session takes the session key with it, on the cells too.
    assert_eq!(call!(C_CloseAllSessions, 0), CKR_OK);
    assert!(cell_keys(&f).is_empty());
}

#[test]
fn token_key_pair() {
    let f = Fixture::new();
    generate_sign_verify(&f, true);
    // It survives the application: found again by CKA_ID after a re-initialisation.
    let cfg = f.bed.config_path.clone();
    assert_eq!(call!(C_Finalize, std::ptr::null_mut()), CKR_OK);
    assert_eq!(initialize(&cfg, CKF_OS_LOCKING_OK), CKR_OK);
    let h = logged_in_rw();
    let mut by_id = Tpl::new().bytes(CKA_ID, b"gen-token");
    let found = find(h, &mut by_id);
    assert_eq!(found.len(), 2);
    let privk = find(
        h,
        &mut Tpl::new()
            .bytes(CKA_ID, b"gen-token")
            .ulong(CKA_CLASS, CKO_PRIVATE_KEY),
    )[0];
    let pubk = found.into_iter().find(|o| *o != privk).unwrap();
    let sig = sign(h, &mut mech(CKM_SHA256_RSA_PKCS), privk, b"again").unwrap();
    rsa_public(h, pubk)
        .pkcs1v15_verify::<Sha256>(b"again", &sig)
        .unwrap();
    for o in [privk, pubk] {
        assert_eq!(call!(C_DestroyObject, h, o), CKR_OK);
    }
    assert!(cell_keys(&f).is_empty());
}

/// A template as SunPKCS11 sends it (bits and a BigInteger exponent; an empty private
/// template): a session pair sharing a CKA_ID derived from the modulus.
#[test]
fn minimal_template_pair() {
    let f = Fixture::new();
    let h = logged_in_rw();
    let mut p = Tpl::new()
        .ulong(CKA_MODULUS_BITS, BITS)
        .bytes(CKA_PUBLIC_EXPONENT, &[0, 1, 0, 1]);
    let (pubk, privk) = generate(h, &mut p, &mut Tpl::new()).expect("C_GenerateKeyPair");
    let id = get_attr(h, pubk, CKA_ID).1.unwrap();
    assert_eq!(id.len(), 20);
    assert_eq!(get_attr(h, privk, CKA_ID).1.unwrap(), id);
    assert_eq!(get_attr(h, privk, CKA_TOKEN).1.unwrap(), [0]);
    assert_eq!(cell_keys(&f).len(), 1);
}

/// Long enough a generation to act on while it runs: RSA-1024 on the testbed may finish in a
/// few milliseconds, RSA-2048 takes far longer than the 50-100 ms these tests wait (and each
/// test ends it early).
const SLOW_BITS: CK_ULONG = 2048;

/// Runs an RSA-2048 C_GenerateKeyPair on `h` in a thread while `during` runs on this one;
/// returns the generation's result and what `during` returned (whether the generation was
/// still running when it acted).
fn while_generating(
    h: CK_SESSION_HANDLE,
    during: impl FnOnce(&AtomicBool) -> bool,
) -> (Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), CK_RV>, bool) {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let gen_thread = s.spawn(|| {
            let r = generate(
                h,
                &mut public_template(SLOW_BITS, false, b"x"),
                &mut private_template(false, b"x"),
            );
            done.store(true, Ordering::SeqCst);
            r
        });
        let overlapped = during(&done);
        (gen_thread.join().unwrap(), overlapped)
    })
}

#[test]
fn cancel_from_another_thread() {
    let f = Fixture::new();
    let h = logged_in_rw();
    let other = open_session(false);
    let (r, overlapped) = while_generating(h, |done| {
        std::thread::sleep(Duration::from_millis(50));
        // Other calls proceed meanwhile, on this session and on others; a second generation
        // on the same session is refused.
        let mut info = std::mem::MaybeUninit::<CK_SESSION_INFO>::zeroed();
        assert_eq!(call!(C_GetSessionInfo, h, info.as_mut_ptr()), CKR_OK);
        assert_eq!(call!(C_GetSessionInfo, other, info.as_mut_ptr()), CKR_OK);
        assert_eq!(
            generate(
                h,
                &mut public_template(BITS, false, b"z"),
                &mut private_template(false, b"z"),
            ),
            Err(CKR_OPERATION_ACTIVE)
        );
        let running = !done.load(Ordering::SeqCst);
        // Cancel until the generation returns (one cancel suffices; repeating costs nothing).
        let asked = Instant::now();
        while !done.load(Ordering::SeqCst) {
            assert_eq!(session_cancel(h, CKF_GENERATE_KEY_PAIR), CKR_OK);
            std::thread::sleep(Duration::from_millis(5));
            assert!(
                asked.elapsed() < Duration::from_secs(20),
                "cancel not honoured"
            );
        }
        running
    });
    assert!(overlapped, "the generation ended before it was cancelled");
    assert_eq!(r, Err(CKR_FUNCTION_CANCELED));
    assert_eq!(key_objects(h), 0);
    assert!(cell_keys(&f).is_empty());
    // A cancel with no generation running does not pre-empt the next one.
    assert_eq!(session_cancel(h, CKF_GENERATE_KEY_PAIR), CKR_OK);
    generate(
        h,
        &mut public_template(BITS, false, b"y"),
        &mut private_template(false, b"y"),
    )
    .expect("generation after a cancel");
    assert_eq!(cell_keys(&f).len(), 1);
}

#[test]
fn closing_the_session_stops_the_generation() {
    let f = Fixture::new();
    let keep = logged_in_rw(); // keeps the login (closing the last session logs out)
    let h = open_session(true);
    let (r, overlapped) = while_generating(h, |done| {
        std::thread::sleep(Duration::from_millis(50));
        let running = !done.load(Ordering::SeqCst);
        assert_eq!(call!(C_CloseSession, h), CKR_OK);
        running
    });
    assert!(
        overlapped,
        "the generation ended before the session was closed"
    );
    assert_eq!(r, Err(CKR_SESSION_CLOSED));
    assert_eq!(key_objects(keep), 0);
    assert!(cell_keys(&f).is_empty());
}

#[test]
fn cell_failure_mid_generation() {
    let mut f = Fixture::new();
    let h = logged_in_rw();
    let bed = &mut f.bed;
    let started = Instant::now();
    let (r, overlapped) = while_generating(h, |done| {
        std::thread::sleep(Duration::from_millis(100));
        let running = !done.load(Ordering::SeqCst);
        bed.stop_cell(2);
        running
    });
    assert!(
        overlapped,
        "the generation ended within {:?}",
        started.elapsed()
    );
    assert_eq!(r, Err(CKR_DEVICE_ERROR));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    f.bed.start_cell(2);
    assert_eq!(key_objects(h), 0);
    assert!(cell_keys(&f).is_empty());
}

#[test]
fn finalize_stops_the_generation() {
    let f = Fixture::new();
    let h = logged_in_rw();
    let (r, overlapped) = while_generating(h, |done| {
        std::thread::sleep(Duration::from_millis(50));
        let running = !done.load(Ordering::SeqCst);
        assert_eq!(call!(C_Finalize, std::ptr::null_mut()), CKR_OK);
        running
    });
    assert!(overlapped, "the generation ended before C_Finalize");
    assert_eq!(r, Err(CKR_CRYPTOKI_NOT_INITIALIZED));
    assert!(cell_keys(&f).is_empty());
}
