//! Upgrade: cells started on databases written by the release before issue 10 (storage
//! version 2, shares sealed in format 1; crates/server/tests/fixtures/v2) migrate forward on
//! start, and the stored key still signs: the signature verifies under its original public
//! key with the rsa crate. A database newer than this build is refused.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use keyfrag_cli::testbed::{Testbed, TestbedOptions};
use keyfrag_client::UserKind;
use keyfrag_core::rsa_combine::{blind, combine};
use keyfrag_core::rsa_public::RsaPublic;
use sha2::{Digest, Sha256};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/tests/fixtures/v2")
}

#[derive(serde::Deserialize)]
struct FixtureKey {
    uid: String,
    modulus: String,
    public_exponent: String,
    label: String,
    user_pin: String,
}

/// EMSA-PKCS1-v1_5 encoding of a SHA-256 digest for a modulus of `k` bytes (RFC 8017 §9.2).
fn pkcs1_sha256(digest: &[u8], k: usize) -> Vec<u8> {
    const PREFIX: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let t = [&PREFIX[..], digest].concat();
    let mut em = vec![0x00, 0x01];
    em.resize(k - t.len() - 1, 0xff);
    em.push(0x00);
    em.extend_from_slice(&t);
    em
}

#[test]
fn cells_on_the_previous_storage_format_migrate_and_the_key_still_signs() {
    let key: FixtureKey =
        toml::from_str(&std::fs::read_to_string(fixture().join("key.toml")).unwrap()).unwrap();
    let mut bed = Testbed::start(TestbedOptions {
        label: key.label.clone(),
        user_pin: None,
        ..TestbedOptions::default()
    });
    for i in 0..3 {
        bed.stop_cell(i);
        let name = keyfrag_cli::provision::cell_name(i);
        let db = bed.cell_database(i);
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        std::fs::copy(fixture().join(format!("{name}.db")), &db).unwrap();
        let master = bed.provisioned.cell_dirs[i].join("master.key");
        std::fs::copy(fixture().join(format!("{name}.master.key")), &master).unwrap();
        std::fs::set_permissions(&master, std::fs::Permissions::from_mode(0o600)).unwrap();
        bed.start_cell(i);
        let conn = rusqlite::Connection::open(&db).unwrap();
        let version: u32 = conn
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, keyfrag_server::store::STORAGE_VERSION, "{name}");
    }

    let cluster = bed.cluster();
    cluster.login(UserKind::User, &key.user_pin).unwrap();
    let n = hex::decode(&key.modulus).unwrap();
    let e = hex::decode(&key.public_exponent).unwrap();
    let public = RsaPublic::new(&n, &e).unwrap();
    let message = b"signed after the upgrade";
    let em = pkcs1_sha256(&Sha256::digest(message), n.len());
    let blinded = blind(&public, &em).unwrap();
    let partials = cluster.rsa_partials(&key.uid, &blinded.input).unwrap();
    let signature = combine(&public, &blinded, &partials)
        .expect("combined result verifies")
        .expose()
        .to_vec();
    let verifying = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&n),
        rsa::BoxedUint::from_be_slice_vartime(&e),
    )
    .unwrap();
    assert_eq!(n.len(), 256, "RSA-2048");
    verifying
        .verify(
            rsa::Pkcs1v15Sign::new::<rsa::sha2::Sha256>(),
            &Sha256::digest(message),
            &signature,
        )
        .expect("the upgraded cells' signature verifies under the original public key");

    // A database from a newer release is refused rather than guessed at.
    bed.stop_cell(0);
    let conn = rusqlite::Connection::open(bed.cell_database(0)).unwrap();
    conn.execute(
        "UPDATE schema_version SET version = ?1",
        [keyfrag_server::store::STORAGE_VERSION + 1],
    )
    .unwrap();
    drop(conn);
    let config = keyfrag_server::CellConfig::load(&bed.provisioned.cell_configs[0]).unwrap();
    let e = keyfrag_server::AppState::open(&config).unwrap_err();
    assert!(e.to_string().contains("schema version"), "{e}");
}
