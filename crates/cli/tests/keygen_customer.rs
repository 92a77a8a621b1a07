//! Customer-mode generation through the client against an in-process 3-cell cluster
//! (RSA-1024 under a Paillier-2048 customer key): the customer's card pinned on the token
//! with the operator's keys, the customer party run by the client from a seed. The cells'
//! partials combined cannot sign; with the customer's share c they sign, and `rsa` verifies.
//! Without a pinned card the cells refuse customer mode, and once it is pinned they refuse
//! cells-only generation; a relay that delivers nothing is a stall.

use std::sync::atomic::AtomicBool;

use keyfrag_cli::customer_fragment::{new, pin, pin_seed};
use keyfrag_cli::secret_input::SecretInput;
use keyfrag_cli::testbed::{Testbed, TestbedOptions};
use keyfrag_client::admin::customer_card;
use keyfrag_client::cluster::KeygenOptions;
use keyfrag_client::customer_file;
use keyfrag_client::{Cluster, ErrorKind, UserKind};
use keyfrag_core::customer::{CustomerSeed, KdfParams};
use keyfrag_core::hash::HashAlg;
use keyfrag_core::padding::pkcs1v15;
use keyfrag_core::rsa_combine::{blind, combine};
use keyfrag_core::rsa_partial::rsa_partial;
use keyfrag_core::rsa_public::RsaPublic;
use rsa::Pkcs1v15Sign;
use rsa::sha2::Sha256;

fn uid() -> String {
    keyfrag_core::random::uid_hex().unwrap()
}

fn label(bed: &Testbed) -> String {
    bed.cluster().config().label.clone()
}

fn customer_mode(seed: &CustomerSeed) -> KeygenOptions<'_> {
    KeygenOptions {
        lease_secs: None,
        pooled: false,
        customer: Some(seed),
    }
}

/// The cells' partials, with and without the customer's: only with it do they combine to a
/// PKCS#1 v1.5 signature that `rsa` verifies.
fn signs_only_with_the_customer_share(
    cluster: &Cluster,
    seed: &CustomerSeed,
    uid: &str,
    n: &[u8],
    e: &[u8],
) {
    let public = RsaPublic::new(n, e).unwrap();
    let h = HashAlg::Sha256.digest(b"keyfrag: generated in customer mode");
    let em = pkcs1v15::sign_pad(&HashAlg::Sha256.digest_info(&h), public.size()).unwrap();
    let blinded = blind(&public, &em).unwrap();
    let cells = cluster.rsa_partials(uid, &blinded.input).expect("partials");
    assert_eq!(cells.len(), 3);
    assert_eq!(
        combine(&public, &blinded, &cells).unwrap_err(),
        keyfrag_core::Error::VerifyFailed,
        "the cells alone produced a valid signature"
    );
    let c = seed.rsa_share(uid, public.bits()).unwrap();
    let mut all = cells.clone();
    all.push(rsa_partial(n, &blinded.input, &c).unwrap());
    let sig = combine(&public, &blinded, &all).expect("with c the partials combine");
    let pk = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(n),
        rsa::BoxedUint::from_be_slice_vartime(e),
    )
    .unwrap();
    pk.verify(Pkcs1v15Sign::new::<Sha256>(), &h, sig.expose())
        .expect("rsa verifies the signature");
}

#[test]
fn a_pinned_customer_generates_with_the_cells_and_they_alone_cannot_sign() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("keyfrag_client=info")
        .with_test_writer()
        .try_init();
    let bed = Testbed::start(TestbedOptions::default());
    let cluster = bed.cluster();
    // `keyfrag customer-fragment new`, then `pin` (which asks the user PIN).
    let file = bed.dir.path().join("customer.kf");
    let lines = |l: &[&str]| SecretInput::from_lines(l.iter().copied());
    new(
        &file,
        &mut lines(&["1234"]),
        KdfParams::insecure_for_tests(),
    )
    .unwrap();
    let seed = customer_file::load(&file)
        .unwrap()
        .open_with_pin(b"1234")
        .unwrap();
    let admin = &bed.provisioned.admin;
    let err = pin(&file, &label(&bed), admin, &mut lines(&["9999"])).unwrap_err();
    assert!(err.contains("PIN"), "{err}");
    let out = pin(&file, &label(&bed), admin, &mut lines(&["1234"])).expect("pin");
    let fingerprint = customer_card(&seed).unwrap().fingerprint;
    assert!(out.contains(&fingerprint), "{out}");
    assert!(out.contains("cell-a, cell-b, cell-c"), "{out}");
    // Idempotent: the same card again is fine.
    pin_seed(&seed, &label(&bed), admin).expect("pin again");

    // A cells-only generation on the pinned token is refused by the cells, before any round.
    let never = AtomicBool::new(false);
    let err = cluster
        .generate_rsa_key(&uid(), 1024, None, &never)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Device, "{}", err.message);
    assert!(err.message.contains("cell-a"), "{}", err.message);
    assert!(err.message.contains("customer"), "{}", err.message);
    assert!(cluster.list_keys().unwrap().is_empty());

    // A relay that delivers nothing (every inbox of the first wave emptied): a stall, named
    // as such, and the session aborted on every cell with nothing stored.
    let err = cluster
        .generate_rsa_key_report(&uid(), 1024, &customer_mode(&seed), &never, &|_, inbox| {
            inbox.clear()
        })
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Device, "{}", err.message);
    assert!(err.message.contains("stalled in wave 1"), "{}", err.message);
    assert!(cluster.list_keys().unwrap().is_empty());

    let uid = uid();
    let report = cluster
        .generate_rsa_key_report(&uid, 1024, &customer_mode(&seed), &never, &|_, _| {})
        .expect("customer-mode generation");
    let stats = report.customer.as_ref().expect("the customer's counters");
    println!(
        "customer-mode rsa-1024: {:?}, {} waves, {} pairs, {:.1} MB up, {:.1} MB down",
        report.elapsed,
        report.waves,
        stats.pairs,
        report.bytes_up as f64 / 1e6,
        report.bytes_down as f64 / 1e6
    );
    assert!(stats.pairs > 0);
    let (n, e) = (report.modulus, report.public_exponent);
    assert_eq!(e, vec![1, 0, 1]);
    assert_eq!(n.len(), 128);
    assert!(n[0] & 0x80 != 0, "exactly 1024 bits");
    let keys = cluster.list_keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0].uid.as_str(), keys[0].bits), (uid.as_str(), 1024));
    cluster.login(UserKind::User, "1234").unwrap();
    signs_only_with_the_customer_share(&cluster, &seed, &uid, &n, &e);

    // Another seed's card is not this token's customer: the cells refuse to pin it.
    let other = CustomerSeed::generate().unwrap();
    let err = pin_seed(&other, &label(&bed), &bed.provisioned.admin).unwrap_err();
    assert!(
        err.contains("cell-a") && err.contains("not pinned"),
        "{err}"
    );
}

#[test]
fn customer_mode_without_a_pinned_card_is_refused_by_the_cells() {
    let bed = Testbed::start(TestbedOptions::default());
    let cluster = bed.cluster();
    let seed = CustomerSeed::generate().unwrap();
    let err = cluster
        .generate_rsa_key_with(&uid(), 1024, &customer_mode(&seed), &AtomicBool::new(false))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Device, "{}", err.message);
    assert!(
        err.message.contains("cell-") && err.message.contains("customer"),
        "{}",
        err.message
    );
    assert!(cluster.list_keys().unwrap().is_empty());
    // Cells-only generation on the token without a card still works.
    let (n, _) = cluster
        .generate_rsa_key(&uid(), 1024, None, &AtomicBool::new(false))
        .expect("cells-only generation");
    assert_eq!(n.len(), 128);
}
