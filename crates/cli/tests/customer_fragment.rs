//! `keyfrag customer-fragment`: new, backup, restore, change-pin, show — through the library
//! functions the binary calls, with secrets given as lines.

use std::path::Path;

use keyfrag_cli::customer_fragment::{backup, change_pin, new, restore, show};
use keyfrag_cli::secret_input::SecretInput;
use keyfrag_client::customer_file;
use keyfrag_core::customer::{KdfParams, UnsealError};

fn params() -> KdfParams {
    KdfParams::insecure_for_tests()
}

fn input(lines: &[&str]) -> SecretInput {
    SecretInput::from_lines(lines.iter().copied())
}

/// Creates a fragment; returns the recovery secret printed by `new`.
fn create(file: &Path, pin: &str) -> String {
    let out = new(file, &mut input(&[pin]), params()).unwrap();
    let line = out
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 69 && l.matches('-').count() == 13)
        .expect("the recovery secret is printed");
    line.to_string()
}

fn seed_fingerprint(file: &Path, pin: &str) -> [u8; 32] {
    customer_file::load(file)
        .unwrap()
        .open_with_pin(pin.as_bytes())
        .unwrap()
        .fingerprint()
}

#[test]
fn new_refuses_to_overwrite_and_show_prints_only_public_facts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("customer.kf");
    let recovery = create(&file, "1234");
    let before = std::fs::read(&file).unwrap();
    let err = new(&file, &mut input(&["5678"]), params()).unwrap_err();
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), before);
    let shown = show(&file).unwrap();
    assert!(shown.contains("fingerprint:") && shown.contains("PIN seal: yes"));
    assert!(!shown.contains(&recovery));
}

#[test]
fn change_pin_keeps_the_seed_and_a_wrong_pin_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("customer.kf");
    create(&file, "1234");
    let fp = seed_fingerprint(&file, "1234");
    let before = std::fs::read(&file).unwrap();
    let err = change_pin(&file, &mut input(&["9999", "4321"]), params()).unwrap_err();
    assert!(err.contains("does not open with this PIN"), "{err}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "a wrong PIN rewrote the file"
    );
    change_pin(&file, &mut input(&["1234", "4321"]), params()).unwrap();
    assert_eq!(seed_fingerprint(&file, "4321"), fp);
    assert_eq!(
        customer_file::load(&file)
            .unwrap()
            .open_with_pin(b"1234")
            .unwrap_err(),
        UnsealError::WrongPin
    );
}

#[test]
fn a_lost_file_comes_back_from_its_backup_with_the_recovery_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("customer.kf");
    let saved = dir.path().join("customer.backup");
    let recovery = create(&file, "1234");
    let fp = seed_fingerprint(&file, "1234");

    // A wrong recovery secret writes no backup.
    let wrong = "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA";
    assert!(backup(&file, &saved, &mut input(&[wrong])).is_err());
    assert!(!saved.exists());
    backup(&file, &saved, &mut input(&[&recovery])).unwrap();
    let b = customer_file::load(&saved).unwrap();
    assert!(!b.has_pin_seal());
    assert_eq!(
        b.open_with_pin(b"1234").unwrap_err(),
        UnsealError::NoPinSlot
    );

    std::fs::remove_file(&file).unwrap();
    restore(&saved, &file, &mut input(&[&recovery, "2468"]), params()).unwrap();
    assert_eq!(seed_fingerprint(&file, "2468"), fp);
    // The restored file keeps its recovery seal: it can be backed up again.
    let again = dir.path().join("again.backup");
    backup(&file, &again, &mut input(&[&recovery])).unwrap();
}

#[test]
fn restore_after_a_pin_reset_replaces_only_the_same_customers_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("customer.kf");
    let other = dir.path().join("other.kf");
    let recovery = create(&file, "1234");
    create(&other, "1234");
    let fp = seed_fingerprint(&file, "1234");

    // Same seed, new PIN (the security officer reset the user PIN on the cells).
    restore(&file, &file, &mut input(&[&recovery, "1111"]), params()).unwrap();
    assert_eq!(seed_fingerprint(&file, "1111"), fp);

    // Another customer's file is never replaced.
    let before = std::fs::read(&other).unwrap();
    let err = restore(&file, &other, &mut input(&[&recovery, "1111"]), params()).unwrap_err();
    assert!(err.contains("another customer fragment"), "{err}");
    assert_eq!(std::fs::read(&other).unwrap(), before);
}
