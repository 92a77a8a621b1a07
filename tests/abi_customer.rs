//! The customer fragment through the C API: a token whose keys need the customer's share,
//! unsealed by the user PIN at C_Login (DESIGN "Customer fragment"), and whose keys are
//! generated in customer mode with the module as the customer party (RSA-1024 here).
#![allow(clippy::macro_metavars_in_unsafe)] // `call!` wraps calls through the C function list

mod common;

use std::path::{Path, PathBuf};
use std::sync::MutexGuard;

use common::*;
use cryptoki_sys::*;
use keyfrag_cli::customer_fragment;
use keyfrag_cli::secret_input::SecretInput;
use keyfrag_cli::testbed::{Testbed, TestbedOptions};
use keyfrag_client::admin::{AdminFile, customer_card, pin_customer_card};
use keyfrag_client::customer_file;
use keyfrag_client::{Config, UserKind};
use keyfrag_core::customer::{CustomerSeed, KdfParams, RecoverySecret, SealedFragment};
use keyfrag_core::rsa_combine;
use keyfrag_core::rsa_public::RsaPublic;
use rsa::Pkcs1v15Sign;
use rsa::sha2::{Digest, Sha256};
use rsa::traits::PublicKeyParts;

/// CKA_KEYFRAG_CUSTOMER (include/keyfrag.h).
const CKA_KEYFRAG_CUSTOMER: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 0x4B46_0000 | 2;

struct CustomerBed {
    bed: Testbed,
    file: PathBuf,
    recovery: RecoverySecret,
    seed: CustomerSeed,
    seed_fingerprint: [u8; 32],
    _guard: MutexGuard<'static, ()>,
}

impl CustomerBed {
    /// A testbed whose token names a customer fragment sealed under the user PIN; the
    /// module initialised on it.
    fn new() -> CustomerBed {
        let guard = serial();
        let bed = Testbed::start(TestbedOptions::default());
        let file = bed.dir.path().join("customer.kf");
        let seed = CustomerSeed::generate().unwrap();
        let recovery = RecoverySecret::generate().unwrap();
        let sealed = SealedFragment::seal(
            &seed,
            USER_PIN.as_bytes(),
            &recovery,
            KdfParams::insecure_for_tests(),
        )
        .unwrap();
        customer_file::create(&file, &sealed).unwrap();
        let mut config = Config::load(&bed.config_path).unwrap();
        config.tokens[0].customer_fragment = Some(file.clone());
        std::fs::write(&bed.config_path, toml::to_string(&config).unwrap()).unwrap();
        assert_eq!(initialize(&bed.config_path, CKF_OS_LOCKING_OK), CKR_OK);
        CustomerBed {
            bed,
            file,
            recovery,
            seed_fingerprint: seed.fingerprint(),
            seed,
            _guard: guard,
        }
    }

    /// The operator pins the customer's card on the token of every cell: generation on the
    /// token is in customer mode from then on.
    fn pin_card(&self) {
        let clients = AdminFile::load(&self.bed.provisioned.admin)
            .unwrap()
            .clients()
            .unwrap();
        let label = self.bed.cluster().config().label.clone();
        let card = customer_card(&self.seed).unwrap();
        for (cell, pinned) in pin_customer_card(&clients, &label, &card) {
            pinned.unwrap_or_else(|e| panic!("pin on {cell}: {}", e.message));
        }
    }

    fn restore(&self, from: &Path, new_pin: &str) {
        let secret = self.recovery.to_display().to_string();
        customer_fragment::restore(
            from,
            &self.file,
            &mut SecretInput::from_lines([secret, new_pin.to_string()]),
            KdfParams::insecure_for_tests(),
        )
        .unwrap();
    }
}

impl Drop for CustomerBed {
    fn drop(&mut self) {
        let _ = call!(C_Finalize, std::ptr::null_mut());
    }
}

fn sign_sha256(h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE, msg: &[u8]) -> Result<Vec<u8>, CK_RV> {
    sign(h, &mut mech(CKM_SHA256_RSA_PKCS), key, msg)
}

fn assert_signs(h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) {
    let msg = b"signed with the customer's share";
    let sig = sign_sha256(h, key, msg).expect("sign");
    rsa_key()
        .to_public_key()
        .verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg), &sig)
        .expect("signature verifies");
}

fn logout(h: CK_SESSION_HANDLE) {
    assert_eq!(call!(C_Logout, h), CKR_OK);
}

fn set_pin(h: CK_SESSION_HANDLE, old: &str, new: &str) -> CK_RV {
    call!(
        C_SetPIN,
        h,
        old.as_ptr() as *mut u8,
        old.len() as CK_ULONG,
        new.as_ptr() as *mut u8,
        new.len() as CK_ULONG
    )
}

#[test]
fn keys_need_the_customer_share_and_the_cells_alone_cannot_sign() {
    let f = CustomerBed::new();
    let h = open_session(true);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    let (k, _) = import_rsa(h, rsa_key(), true, b"c1");
    assert_signs(h, k);
    assert_eq!(
        get_attr(h, k, CKA_KEYFRAG_CUSTOMER),
        (CKR_OK, Some(f.seed_fingerprint.to_vec()))
    );

    // Every cell's partial, combined without the customer's: no valid result.
    let cluster = f.bed.cluster();
    cluster.login(UserKind::User, USER_PIN).unwrap();
    let keys = cluster.list_keys().unwrap();
    assert_eq!(keys.len(), 1);
    let key = rsa_key();
    let public = RsaPublic::new(&key.n_bytes(), &key.e_bytes()).unwrap();
    let mut x = vec![0u8; public.size()];
    x[1..].fill(0x5a);
    let blinded = rsa_combine::blind(&public, &x).unwrap();
    let partials = cluster.rsa_partials(&keys[0].uid, &blinded.input).unwrap();
    assert_eq!(partials.len(), 3);
    assert_eq!(
        rsa_combine::combine(&public, &blinded, &partials).unwrap_err(),
        keyfrag_core::Error::VerifyFailed
    );
    // A refresh (no PIN, no customer) changes the cells' shares and keeps their sum, so the
    // key signs with the same customer share afterwards.
    cluster
        .refresh_key(&keys[0].uid)
        .expect("refresh of a customer key");
    cluster.logout();
    assert_signs(h, k);
}

/// C_GenerateKeyPair (RSA-1024, session objects): (public, private) handles.
fn generate(h: CK_SESSION_HANDLE) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), CK_RV> {
    let mut m = mech(CKM_RSA_PKCS_KEY_PAIR_GEN);
    let (mut pubt, mut privt) = (
        Tpl::new()
            .ulong(CKA_MODULUS_BITS, 1024)
            .bool(CKA_VERIFY, true),
        Tpl::new().bool(CKA_SIGN, true),
    );
    let ((pp, pn), (qp, qn)) = (pubt.ptr(), privt.ptr());
    let (mut a, mut b) = (0, 0);
    match call!(C_GenerateKeyPair, h, &mut m, pp, pn, qp, qn, &mut a, &mut b) {
        CKR_OK => Ok((a, b)),
        rv => Err(rv),
    }
}

#[test]
fn generation_on_a_customer_token_makes_the_module_the_customer_party() {
    let f = CustomerBed::new();
    f.pin_card();
    let h = open_session(true);
    // The token offers generation.
    let mut list = vec![0 as CK_MECHANISM_TYPE; 64];
    let mut n = list.len() as CK_ULONG;
    assert_eq!(
        call!(C_GetMechanismList, 0, list.as_mut_ptr(), &mut n),
        CKR_OK
    );
    assert!(list[..n as usize].contains(&CKM_RSA_PKCS_KEY_PAIR_GEN));
    // Logged out: neither the user nor the seed is there.
    assert_eq!(generate(h), Err(CKR_USER_NOT_LOGGED_IN));
    // Logged in, but the file could not be unsealed: refused before any cell is asked.
    let aside = f.file.with_extension("aside");
    std::fs::rename(&f.file, &aside).unwrap();
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    assert_eq!(generate(h), Err(CKR_DEVICE_ERROR));
    logout(h);
    std::fs::rename(&aside, &f.file).unwrap();

    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    let (public, private) = generate(h).expect("customer-mode generation");
    assert_eq!(
        get_attr(h, private, CKA_KEYFRAG_CUSTOMER),
        (CKR_OK, Some(f.seed_fingerprint.to_vec()))
    );
    let modulus = get_attr(h, public, CKA_MODULUS).1.unwrap();
    let e = get_attr(h, public, CKA_PUBLIC_EXPONENT).1.unwrap();
    assert_eq!(modulus.len(), 128);
    let msg = b"signed by a key generated in customer mode";
    let sig = sign_sha256(h, private, msg).expect("sign");
    let pk = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&modulus),
        rsa::BoxedUint::from_be_slice_vartime(&e),
    )
    .unwrap();
    pk.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg), &sig)
        .expect("signature verifies");

    // Every cell's partial, combined without the customer's: no valid result.
    let cluster = f.bed.cluster();
    cluster.login(UserKind::User, USER_PIN).unwrap();
    let keys = cluster.list_keys().unwrap();
    assert_eq!(keys.len(), 1);
    let public = RsaPublic::new(&modulus, &e).unwrap();
    let mut x = vec![0u8; public.size()];
    x[1..].fill(0x5a);
    let blinded = rsa_combine::blind(&public, &x).unwrap();
    let partials = cluster.rsa_partials(&keys[0].uid, &blinded.input).unwrap();
    assert_eq!(
        rsa_combine::combine(&public, &blinded, &partials).unwrap_err(),
        keyfrag_core::Error::VerifyFailed
    );
    cluster.logout();
}

#[test]
fn without_the_file_private_key_operations_fail_and_a_wrong_pin_never_touches_it() {
    let f = CustomerBed::new();
    let h = open_session(true);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    let (k, _) = import_rsa(h, rsa_key(), true, b"c2");
    logout(h);

    let before = std::fs::read(&f.file).unwrap();
    assert_eq!(login(h, CKU_USER, "9999"), CKR_PIN_INCORRECT);
    assert_eq!(std::fs::read(&f.file).unwrap(), before);

    let aside = f.file.with_extension("aside");
    std::fs::rename(&f.file, &aside).unwrap();
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    assert_eq!(sign_sha256(h, k, b"m"), Err(CKR_DEVICE_ERROR));
    logout(h);
    std::fs::rename(&aside, &f.file).unwrap();

    // A copy readable by others is refused too.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&f.file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    assert_eq!(sign_sha256(h, k, b"m"), Err(CKR_DEVICE_ERROR));
    logout(h);
    std::fs::set_permissions(&f.file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Logout forgets the seed: a new login unseals it again.
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    assert_signs(h, k);
}

#[test]
fn changing_the_pin_reseals_the_file_and_keeps_every_key() {
    let f = CustomerBed::new();
    let h = open_session(true);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    let (k, _) = import_rsa(h, rsa_key(), true, b"c3");
    assert_eq!(set_pin(h, USER_PIN, "2468"), CKR_OK);
    logout(h);
    let sealed = customer_file::load(&f.file).unwrap();
    assert!(sealed.open_with_pin(USER_PIN.as_bytes()).is_err());
    assert_eq!(
        sealed.open_with_pin(b"2468").unwrap().fingerprint(),
        f.seed_fingerprint
    );
    assert_eq!(login(h, CKU_USER, "2468"), CKR_OK);
    assert_signs(h, k);
    // A wrong old PIN changes neither the cells nor the file.
    let before = std::fs::read(&f.file).unwrap();
    assert_eq!(set_pin(h, "0000", "1357"), CKR_PIN_INCORRECT);
    assert_eq!(std::fs::read(&f.file).unwrap(), before);
}

#[test]
fn a_lost_file_and_a_pin_reset_are_recovered_with_the_recovery_secret() {
    let f = CustomerBed::new();
    let h = open_session(true);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    let (k, _) = import_rsa(h, rsa_key(), true, b"c4");
    logout(h);

    // Backup, then lose the file: the backup and the recovery secret bring every key back.
    let backup = f.bed.dir.path().join("customer.backup");
    customer_file::create(&backup, &customer_file::load(&f.file).unwrap().backup()).unwrap();
    std::fs::remove_file(&f.file).unwrap();
    f.restore(&backup, USER_PIN);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    assert_signs(h, k);
    logout(h);

    // The security officer resets the user PIN: the file still has the old seal, so keys
    // refuse until it is restored under the new PIN.
    assert_eq!(login(h, CKU_SO, SO_PIN), CKR_OK);
    let new_pin = "8642";
    assert_eq!(
        call!(
            C_InitPIN,
            h,
            new_pin.as_ptr() as *mut u8,
            new_pin.len() as CK_ULONG
        ),
        CKR_OK
    );
    logout(h);
    assert_eq!(login(h, CKU_USER, new_pin), CKR_OK);
    assert_eq!(sign_sha256(h, k, b"m"), Err(CKR_DEVICE_ERROR));
    logout(h);
    f.restore(&f.file.clone(), new_pin);
    assert_eq!(login(h, CKU_USER, new_pin), CKR_OK);
    assert_signs(h, k);
}
