//! The key pool against an in-process 3-cell testbed (cells-only RSA-1024): `keyfrag pool
//! fill` (the binary) puts whole keys in every cell's pool and `keyfrag keys list` counts them
//! apart from the token's keys; a claim succeeds once; a pooled key refuses partials until
//! claimed and then signs; a key claimed on one cell only is skipped by the listing and, when
//! claimed, deleted everywhere; a fill stopped by its cancel flag keeps the keys it finished;
//! a refresh renews pooled keys; on a token with a pinned customer card `pool fill
//! --customer-fragment` (PIN on stdin) is the customer party and the pooled key signs only
//! with the customer's share.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use keyfrag_cli::customer_fragment;
use keyfrag_cli::secret_input::SecretInput;
use keyfrag_cli::testbed::{Testbed, TestbedOptions};
use keyfrag_client::{Cluster, Config, ErrorKind, UserKind, customer_file};
use keyfrag_core::customer::KdfParams;
use keyfrag_core::hash::HashAlg;
use keyfrag_core::padding::pkcs1v15;
use keyfrag_core::rsa_combine::{blind, combine};
use keyfrag_core::rsa_partial::rsa_partial;
use keyfrag_core::rsa_public::RsaPublic;
use rsa::Pkcs1v15Sign;
use rsa::sha2::Sha256;

/// `keyfrag ARGS` against the testbed's config; (stdout, stderr) of a successful run.
fn keyfrag(bed: &Testbed, args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_keyfrag"))
        .args(args)
        .env("KEYFRAG_CONF", &bed.config_path)
        .output()
        .expect("run keyfrag");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(out.status.success(), "keyfrag {args:?}: {stdout}{stderr}");
    (stdout, stderr)
}

/// A client of cell `i` alone.
fn one_cell(bed: &Testbed, i: usize) -> Cluster {
    let mut token = Config::load(&bed.config_path).unwrap().tokens.remove(0);
    token.cells = vec![token.cells.remove(i)];
    Cluster::new(&token).unwrap()
}

fn blinded_input(modulus: &[u8]) -> (RsaPublic, keyfrag_core::rsa_combine::Blinded, Vec<u8>) {
    let public = RsaPublic::new(modulus, &[1, 0, 1]).unwrap();
    let h = HashAlg::Sha256.digest(b"keyfrag: a pooled key");
    let em = pkcs1v15::sign_pad(&HashAlg::Sha256.digest_info(&h), public.size()).unwrap();
    let blinded = blind(&public, &em).unwrap();
    (public, blinded, h)
}

/// Sign through the cells' shares and verify with `rsa`.
fn sign_and_verify(cluster: &Cluster, uid: &str, modulus: &[u8]) {
    let (public, blinded, h) = blinded_input(modulus);
    let partials = cluster.rsa_partials(uid, &blinded.input).expect("partials");
    let sig = combine(&public, &blinded, &partials).expect("combined signature verifies");
    let pk = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(modulus),
        rsa::BoxedUint::from_be_slice_vartime(&[1, 0, 1]),
    )
    .unwrap();
    pk.verify(Pkcs1v15Sign::new::<Sha256>(), &h, sig.expose())
        .expect("rsa verifies the signature");
}

#[test]
fn filled_keys_are_pooled_claimed_once_and_refuse_partials_until_claimed() {
    let bed = Testbed::start(TestbedOptions::default());
    let (out, _) = keyfrag(&bed, &["pool", "fill", "--count", "2", "--bits", "1024"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for line in &lines[..2] {
        assert!(
            line.starts_with("pooled ") && line.contains(" RSA-1024 (cells only) in "),
            "{line}"
        );
    }
    assert_eq!(lines[2], "2 added; pool: 2 x RSA-1024");

    let cluster = bed.cluster();
    let pool = cluster.pool_list().expect("pool list");
    assert_eq!(pool.len(), 2);
    for e in &pool {
        assert_eq!((e.bits, e.modulus.len()), (1024, 128));
        assert_eq!(e.public_exponent, vec![1, 0, 1]);
        assert!(lines.iter().any(|l| l.contains(&e.uid)), "{out}");
    }
    let (listed, _) = keyfrag(&bed, &["keys", "list"]);
    assert!(listed.contains("pool: 2 x RSA-1024"), "{listed}");
    assert!(
        pool.iter().all(|e| !listed.contains(&e.uid)),
        "pooled keys are not listed as the token's keys: {listed}"
    );
    let (pool_out, _) = keyfrag(&bed, &["pool", "list"]);
    assert!(pool.iter().all(|e| pool_out.contains(&e.uid)), "{pool_out}");
    assert!(pool_out.contains("pool: 2 x RSA-1024"), "{pool_out}");

    // A pooled key refuses partials (409 from every cell) until claimed.
    cluster.login(UserKind::User, "1234").expect("login");
    let (taken, waiting) = (&pool[0], &pool[1]);
    let (_, blinded, _) = blinded_input(&waiting.modulus);
    let e = cluster
        .rsa_partials(&waiting.uid, &blinded.input)
        .expect_err("a pooled key serves no partials");
    assert_eq!(e.kind, ErrorKind::Refused);
    assert!(e.message.contains("is in the pool"), "{}", e.message);

    assert!(cluster.claim_pooled(&taken.uid, None).expect("claim"));
    assert!(
        !cluster
            .claim_pooled(&taken.uid, None)
            .expect("second claim"),
        "a key is claimed once"
    );
    sign_and_verify(&cluster, &taken.uid, &taken.modulus);
    let left = cluster.pool_list().unwrap();
    assert_eq!(left, vec![waiting.clone()]);
    let (listed, _) = keyfrag(&bed, &["keys", "list"]);
    assert!(listed.contains("pool: 1 x RSA-1024"), "{listed}");
    assert!(
        listed.contains(&taken.uid) && !listed.contains(&waiting.uid),
        "{listed}"
    );
}

#[test]
fn a_half_claimed_key_is_skipped_and_deleted_when_claimed() {
    let bed = Testbed::start(TestbedOptions::default());
    let cluster = bed.cluster();
    let never = AtomicBool::new(false);
    let mut out = Vec::new();
    let added = keyfrag_cli::pool::fill(&cluster, 1, 1024, None, &never, &mut out).unwrap();
    assert_eq!(added.len(), 1);
    let uid = &added[0];
    // Claimed on cell-1 alone, as by a client that stopped after its first claim with
    // another cell order.
    assert!(one_cell(&bed, 1).claim_pooled(uid, None).unwrap());
    assert!(cluster.pool_list().unwrap().is_empty(), "not in every pool");
    let stranded = cluster.pool_stranded().unwrap();
    assert_eq!(stranded.len(), 1);
    assert_eq!(stranded[0].0.uid, *uid);
    assert_eq!(stranded[0].1.len(), 2);
    let (pool_out, _) = keyfrag(&bed, &["pool", "list"]);
    assert!(pool_out.contains("pool: empty"), "{pool_out}");
    assert!(
        pool_out.contains(&format!("{uid} RSA-1024 is pooled on ")),
        "{pool_out}"
    );

    // cell-0 grants the claim, cell-1 refuses: unusable, so deleted from every cell.
    let e = cluster
        .claim_pooled(uid, None)
        .expect_err("a half-claimed key cannot be claimed whole");
    assert_eq!(e.kind, ErrorKind::Device);
    assert!(
        cluster.list_keys().unwrap().is_empty(),
        "deleted on every cell"
    );
}

/// Sets the flag once the first key is reported: the fill stops before the next.
struct CancelAfterFirst<'a>(&'a AtomicBool, Vec<u8>);

impl Write for CancelAfterFirst<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.extend_from_slice(buf);
        if buf.starts_with(b"pooled ") {
            self.0.store(true, Ordering::SeqCst);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_cancelled_fill_keeps_the_keys_it_finished() {
    let bed = Testbed::start(TestbedOptions::default());
    let cluster = bed.cluster();
    let cancel = AtomicBool::new(false);
    let mut out = CancelAfterFirst(&cancel, Vec::new());
    let added = keyfrag_cli::pool::fill(&cluster, 3, 1024, None, &cancel, &mut out).unwrap();
    assert_eq!(added.len(), 1);
    let pool: Vec<String> = cluster
        .pool_list()
        .unwrap()
        .into_iter()
        .map(|e| e.uid)
        .collect();
    assert_eq!(pool, added);
    assert_eq!(cluster.list_keys().unwrap().len(), 1, "nothing else stored");
}

#[test]
fn a_refresh_renews_a_pooled_key_which_stays_pooled_and_signs_once_claimed() {
    let bed = Testbed::start(TestbedOptions::default());
    let cluster = bed.cluster();
    let never = AtomicBool::new(false);
    let mut out = Vec::new();
    keyfrag_cli::pool::fill(&cluster, 1, 1024, None, &never, &mut out).unwrap();
    let before = cluster.pool_list().unwrap();
    let refreshed = cluster.refresh_all(4).expect("refresh --all");
    assert_eq!(
        refreshed.len(),
        1,
        "the pooled key is refreshed like every token key"
    );
    let outcome = refreshed[0].1.as_ref().expect("refreshed");
    assert_eq!((outcome.from_epoch, outcome.epoch), (1, 2));
    assert_eq!(cluster.pool_list().unwrap(), before, "still pooled");
    assert_eq!(cluster.list_keys().unwrap()[0].epoch, 2);
    cluster.login(UserKind::User, "1234").unwrap();
    assert!(cluster.claim_pooled(&before[0].uid, None).unwrap());
    sign_and_verify(&cluster, &before[0].uid, &before[0].modulus);
}

/// `keyfrag pool fill` with the PIN on standard input; the whole output (status, stdout+stderr).
fn keyfrag_with_pin(bed: &Testbed, args: &[&str], pin: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyfrag"))
        .args(args)
        .env("KEYFRAG_CONF", &bed.config_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run keyfrag");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{pin}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_customer_token_is_filled_with_the_cli_as_the_customer_party() {
    let bed = Testbed::start(TestbedOptions::default());
    let file = bed.dir.path().join("customer.kf");
    let lines = |l: &[&str]| SecretInput::from_lines(l.iter().copied());
    customer_fragment::new(
        &file,
        &mut lines(&["1234"]),
        KdfParams::insecure_for_tests(),
    )
    .unwrap();
    let seed = customer_file::load(&file)
        .unwrap()
        .open_with_pin(b"1234")
        .unwrap();
    let label = bed.cluster().config().label.clone();
    customer_fragment::pin_seed(&seed, &label, &bed.provisioned.admin).expect("pin the card");
    let file_arg = file.to_str().unwrap();
    let fill = [
        "pool",
        "fill",
        "--count",
        "1",
        "--bits",
        "1024",
        "--customer-fragment",
        file_arg,
    ];

    // A wrong PIN opens nothing and generates nothing.
    let (ok, out) = keyfrag_with_pin(&bed, &fill, "9999");
    assert!(!ok, "{out}");
    let cluster = bed.cluster();
    assert!(cluster.list_keys().unwrap().is_empty(), "{out}");

    let (ok, out) = keyfrag_with_pin(&bed, &fill, "1234");
    assert!(ok, "{out}");
    assert!(out.contains(" RSA-1024 (customer mode) in "), "{out}");
    assert!(out.contains("1 added; pool: 1 x RSA-1024"), "{out}");
    let pool = cluster.pool_list().unwrap();
    assert_eq!(pool.len(), 1);
    let key = &pool[0];

    // Claimed, it signs only with the customer's share c added to the cells' partials.
    cluster.login(UserKind::User, "1234").unwrap();
    assert!(cluster.claim_pooled(&key.uid, None).unwrap());
    let (public, blinded, h) = blinded_input(&key.modulus);
    let mut partials = cluster.rsa_partials(&key.uid, &blinded.input).unwrap();
    assert_eq!(
        combine(&public, &blinded, &partials).unwrap_err(),
        keyfrag_core::Error::VerifyFailed,
        "the cells alone cannot sign"
    );
    let c = seed.rsa_share(&key.uid, 1024).unwrap();
    partials.push(rsa_partial(&key.modulus, &blinded.input, &c).unwrap());
    let sig = combine(&public, &blinded, &partials).expect("with c the partials combine");
    rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&key.modulus),
        rsa::BoxedUint::from_be_slice_vartime(&[1, 0, 1]),
    )
    .unwrap()
    .verify(Pkcs1v15Sign::new::<Sha256>(), &h, sig.expose())
    .expect("rsa verifies the signature");
}
