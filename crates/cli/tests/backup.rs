//! Backups across the cells, against an in-process cluster: the restore drill (keys made and
//! refreshed, backed up, destroyed and a cell's store wiped, restored: every key signs again
//! with its original public key, verified by `rsa`), refresh refused while a backup holds the
//! pause, and bad sets (mixed, corrupted, another cell's) refused with a clear error and no
//! cell changed.

use std::path::Path;

use keyfrag_cli::backup::{MANIFEST_FILE, Manifest, backup, restore};
use keyfrag_cli::testbed::{Testbed, TestbedOptions};
use keyfrag_client::admin::{AdminCell, AdminClient, AdminFile};
use keyfrag_client::{Cluster, Config, ErrorKind, UserKind};
use keyfrag_core::hash::HashAlg;
use keyfrag_core::padding::pkcs1v15;
use keyfrag_core::rsa_combine::{blind, combine};
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_core::rsa_share::split_exponent;
use keyfrag_proto::backup::{PauseRequest, PauseResponse, RestoreRequest, RestoreResponse};
use rsa::Pkcs1v15Sign;
use rsa::sha2::Sha256;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use sha2::Digest;

/// The operator's view of the testbed: each cell's URL, own CA and operator key.
fn admin_of(bed: &Testbed) -> AdminFile {
    let config = Config::load(&bed.config_path).unwrap();
    AdminFile {
        cells: config.tokens[0]
            .cells
            .iter()
            .zip(&bed.provisioned.cell_dirs)
            .map(|(c, dir)| AdminCell {
                name: c.name.clone(),
                url: c.url.clone(),
                ca: dir.join(keyfrag_server::init::TLS_CA_FILE),
                operator_key_file: dir.join(keyfrag_server::init::OPERATOR_KEY_FILE),
                fingerprint: String::new(),
            })
            .collect(),
    }
}

struct Key {
    uid: String,
    n: Vec<u8>,
    e: Vec<u8>,
}

/// A token key made with `rsa` and stored as shares (the cells never see d).
fn import_key(cluster: &Cluster) -> Key {
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 1024).unwrap();
    let n = key.n().to_be_bytes_trimmed_vartime().into_vec();
    let e = key.e().to_be_bytes_trimmed_vartime().into_vec();
    let d = key.d().to_be_bytes_trimmed_vartime();
    let shares = split_exponent(&d, 1024, cluster.cell_count()).unwrap();
    let uid = keyfrag_core::random::uid_hex().unwrap();
    cluster.put_rsa_key(&uid, &n, &e, shares, None).unwrap();
    Key { uid, n, e }
}

/// Sign through the cells' shares and verify with `rsa` against the key's original public key.
fn signs(cluster: &Cluster, key: &Key) {
    let public = RsaPublic::new(&key.n, &key.e).unwrap();
    let h = HashAlg::Sha256.digest(b"keyfrag: restored");
    let em = pkcs1v15::sign_pad(&HashAlg::Sha256.digest_info(&h), public.size()).unwrap();
    let blinded = blind(&public, &em).unwrap();
    let partials = cluster.rsa_partials(&key.uid, &blinded.input).unwrap();
    let sig = combine(&public, &blinded, &partials).expect("combined signature verifies");
    let pk = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&key.n),
        rsa::BoxedUint::from_be_slice_vartime(&key.e),
    )
    .unwrap();
    pk.verify(Pkcs1v15Sign::new::<Sha256>(), &h, sig.expose())
        .expect("rsa verifies the signature with the original public key");
}

fn uids(cluster: &Cluster) -> Vec<String> {
    let mut u: Vec<String> = cluster
        .list_keys()
        .unwrap()
        .into_iter()
        .map(|k| k.uid)
        .collect();
    u.sort();
    u
}

fn manifest(dir: &Path) -> Manifest {
    serde_json::from_slice(&std::fs::read(dir.join(MANIFEST_FILE)).unwrap()).unwrap()
}

fn write_manifest(dir: &Path, m: &Manifest) {
    std::fs::write(
        dir.join(MANIFEST_FILE),
        serde_json::to_vec_pretty(m).unwrap(),
    )
    .unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

fn sha_hex(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn restore_drill_every_key_signs_again_with_its_original_public_key() {
    let mut bed = Testbed::start(TestbedOptions::default());
    let admin = admin_of(&bed);
    let cluster = bed.cluster();
    let keys: Vec<Key> = (0..2).map(|_| import_key(&cluster)).collect();
    for (uid, r) in cluster.refresh_all(2).unwrap() {
        r.unwrap_or_else(|e| panic!("refresh {uid}: {}", e.message));
    }

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backup-1");
    let summary = backup(&admin, &out).unwrap();
    assert!(summary.contains("3 cells, 2 token keys"), "{summary}");
    let m = manifest(&out);
    assert_eq!(m.cells.len(), 3);
    for cell in &m.cells {
        let epochs = &cell.epochs["keyfrag-test"];
        for k in &keys {
            assert_eq!(epochs[&k.uid], 2, "cell {} key {}", cell.name, k.uid);
        }
        assert_eq!(cell.sha256, sha_hex(&out.join(&cell.snapshot)));
        assert_eq!(cell.identity_fingerprint.len(), 64);
    }
    // The pause was lifted: a refresh runs again (and the backup is now stale: epoch 3).
    for (uid, r) in cluster.refresh_all(2).unwrap() {
        r.unwrap_or_else(|e| panic!("refresh after backup {uid}: {}", e.message));
    }

    // Disaster: the keys deleted everywhere, and cell-b's store wiped.
    for k in &keys {
        cluster.delete_key(&k.uid).unwrap();
    }
    drop(cluster);
    bed.stop_cell(1);
    let db = bed.cell_database(1);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    bed.start_cell(1);
    assert!(!bed.cluster().token_status().is_ok_and(|s| s.initialized));

    let summary = restore(&admin, &out).unwrap();
    assert!(
        summary.starts_with("restored 3 cells (cell-a, cell-b, cell-c) from backup "),
        "{summary}"
    );
    let cluster = bed.cluster();
    let mut want: Vec<String> = keys.iter().map(|k| k.uid.clone()).collect();
    want.sort();
    assert_eq!(uids(&cluster), want);
    cluster.login(UserKind::User, "1234").unwrap();
    for k in &keys {
        assert_eq!(cluster.key_epoch(&k.uid).unwrap(), 2);
        signs(&cluster, k);
    }
    // And the restored keys refresh on.
    for (uid, r) in cluster.refresh_all(2).unwrap() {
        r.unwrap_or_else(|e| panic!("refresh after restore {uid}: {}", e.message));
    }
    for k in &keys {
        signs(&cluster, k);
    }
}

#[test]
fn refresh_is_refused_while_a_backup_holds_the_pause() {
    let bed = Testbed::start(TestbedOptions::default());
    let admin = admin_of(&bed);
    let cluster = bed.cluster();
    let key = import_key(&cluster);
    let backup_id = "0123456789abcdef0123456789abcdef".to_string();
    let clients = admin.clients().unwrap();
    for c in &clients {
        let _: PauseResponse = c
            .post_json(
                "backup/pause",
                &PauseRequest {
                    backup_id: backup_id.clone(),
                    ttl_secs: 600,
                },
            )
            .unwrap();
    }
    let e = cluster.refresh_key(&key.uid).expect_err("paused");
    assert_eq!(e.kind, ErrorKind::RefreshPaused, "{}", e.message);
    assert!(
        e.message
            .contains("refresh is paused on this cell while a backup runs; retry once it ends"),
        "{}",
        e.message
    );
    // `keyfrag refresh` says so too, and fails.
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_keyfrag"))
        .args(["refresh", "--key", &key.uid])
        .env("KEYFRAG_CONF", &bed.config_path)
        .env("KEYFRAG_LOG", "off")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!run.status.success(), "{text}");
    assert!(
        text.contains("refresh is paused on this cell while a backup runs"),
        "{text}"
    );
    // Partials still work while paused.
    cluster.login(UserKind::User, "1234").unwrap();
    signs(&cluster, &key);
    // Another backup cannot take the pause meanwhile.
    let other = keyfrag_cli::backup::backup(&admin, &bed.dir.path().join("other"))
        .expect_err("the pause is held");
    assert!(other.contains("holds refresh paused"), "{other}");
    for c in &clients {
        let _: keyfrag_proto::backup::ResumeResponse = c
            .post_json(
                "backup/resume",
                &keyfrag_proto::backup::ResumeRequest {
                    backup_id: backup_id.clone(),
                },
            )
            .unwrap();
    }
    assert_eq!(cluster.refresh_key(&key.uid).unwrap().epoch, 2);
}

#[test]
fn mixed_corrupted_and_foreign_sets_are_refused_and_nothing_changes() {
    let bed = Testbed::start(TestbedOptions::default());
    let admin = admin_of(&bed);
    let cluster = bed.cluster();
    import_key(&cluster);
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    backup(&admin, &a).unwrap();
    // A key made after backup A, then backup B: restoring A would remove it.
    import_key(&cluster);
    let b = dir.path().join("b");
    backup(&admin, &b).unwrap();
    let before = uids(&cluster);
    assert_eq!(before.len(), 2);
    let unchanged = || assert_eq!(uids(&bed.cluster()), before, "a cell changed");

    // Mixed: B's cell-b snapshot in A's directory.
    let mixed = dir.path().join("mixed");
    copy_dir(&a, &mixed);
    std::fs::copy(b.join("cell-b.snapshot"), mixed.join("cell-b.snapshot")).unwrap();
    let e = restore(&admin, &mixed).unwrap_err();
    assert!(
        e.contains(
            "cell-b.snapshot does not match the manifest's hash (corrupted, or from another backup)"
        ),
        "{e}"
    );
    unchanged();
    // ... even with the manifest's hash edited to match.
    let mut m = manifest(&mixed);
    m.cells[1].sha256 = sha_hex(&mixed.join("cell-b.snapshot"));
    write_manifest(&mixed, &m);
    let e = restore(&admin, &mixed).unwrap_err();
    let b_id = manifest(&b).backup_id;
    assert!(
        e.contains(&format!(
            "cell-b.snapshot belongs to backup {b_id}, the manifest to {} (a mixed set)",
            m.backup_id
        )),
        "{e}"
    );
    unchanged();

    // Corrupted: one ciphertext byte flipped (hash caught; with the hash edited, the cell's
    // seal check).
    let corrupt = dir.path().join("corrupt");
    copy_dir(&a, &corrupt);
    let path = corrupt.join("cell-a.snapshot");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 20;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let e = restore(&admin, &corrupt).unwrap_err();
    assert!(e.contains("does not match the manifest's hash"), "{e}");
    let mut m = manifest(&corrupt);
    m.cells[0].sha256 = sha_hex(&path);
    write_manifest(&corrupt, &m);
    let e = restore(&admin, &corrupt).unwrap_err();
    assert_eq!(
        e,
        "nothing restored: cell cell-a: snapshot does not authenticate: it is corrupted or was \
         altered (admin/backup/restore)"
    );
    unchanged();

    // Another cell's snapshot listed for cell-a.
    let foreign = dir.path().join("foreign");
    copy_dir(&a, &foreign);
    std::fs::copy(
        foreign.join("cell-b.snapshot"),
        foreign.join("cell-a.snapshot"),
    )
    .unwrap();
    let mut m = manifest(&foreign);
    m.cells[0].sha256 = sha_hex(&foreign.join("cell-a.snapshot"));
    write_manifest(&foreign, &m);
    let e = restore(&admin, &foreign).unwrap_err();
    assert!(
        e.contains("is not the snapshot the manifest lists for cell cell-a (it is cell cell-b's)"),
        "{e}"
    );
    unchanged();
    // Sent to cell-a anyway, cell-a refuses it itself.
    let cell_a = AdminClient::new(&admin.cells[0]).unwrap();
    let e = cell_a
        .post_json::<_, RestoreResponse>(
            "backup/restore",
            &RestoreRequest {
                backup_id: m.backup_id.clone(),
                dry_run: false,
                snapshot: std::fs::read(a.join("cell-b.snapshot")).unwrap(),
            },
        )
        .unwrap_err();
    assert!(
        e.message
            .contains("the snapshot is of cell cell-b, this is cell cell-a"),
        "{}",
        e.message
    );
    unchanged();

    // A set missing a cell.
    let short = dir.path().join("short");
    copy_dir(&a, &short);
    let mut m = manifest(&short);
    m.cells.pop();
    write_manifest(&short, &m);
    let e = restore(&admin, &short).unwrap_err();
    assert!(e.contains("it holds 2 cells, the cluster has 3"), "{e}");
    unchanged();

    // The genuine set B still restores.
    restore(&admin, &b).unwrap();
    unchanged();
}
