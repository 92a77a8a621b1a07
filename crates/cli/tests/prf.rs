//! PRF keys through keyfrag-client against a real in-process 3-cell cluster: creation all
//! or nothing, verified evaluation, the customer's share, a cell down or with a replaced
//! share, deletion and leases.

use keyfrag_cli::testbed::{Testbed, TestbedOptions};
use keyfrag_client::{Cluster, Config, ErrorKind, UserKind};
use keyfrag_core::customer::seed::CustomerSeed;
use keyfrag_core::random::uid_hex;

fn logged_in(bed: &Testbed) -> Cluster {
    let cluster = bed.cluster();
    cluster.login(UserKind::User, "1234").expect("user login");
    cluster
}

/// A client of cell `i` alone (to act on one cell behind the others' backs).
fn one_cell(bed: &Testbed, i: usize) -> Cluster {
    let mut token = Config::load(&bed.config_path).unwrap().tokens.remove(0);
    token.cells = vec![token.cells.remove(i)];
    Cluster::new(&token).unwrap()
}

#[test]
fn a_created_key_evaluates_the_same_function_every_time() {
    let bed = Testbed::start(TestbedOptions::default());
    let cluster = logged_in(&bed);
    let (a, b) = (uid_hex().unwrap(), uid_hex().unwrap());
    let info = cluster.prf_create(&a, None).expect("create");
    assert_eq!((info.uid.as_str(), info.epoch), (a.as_str(), 1));
    cluster.prf_create(&b, None).expect("create another");

    let x = cluster
        .prf_evaluate(&a, b"keyfrag/aes/v1 input", None)
        .unwrap();
    // Fresh blinds, another client process's view: the same output.
    assert_eq!(
        *x,
        *cluster
            .prf_evaluate(&a, b"keyfrag/aes/v1 input", None)
            .unwrap()
    );
    assert_eq!(
        *x,
        *logged_in(&bed)
            .prf_evaluate(&a, b"keyfrag/aes/v1 input", None)
            .unwrap()
    );
    assert_ne!(
        *x,
        *cluster.prf_evaluate(&a, b"another input", None).unwrap()
    );
    assert_ne!(
        *x,
        *cluster
            .prf_evaluate(&b, b"keyfrag/aes/v1 input", None)
            .unwrap()
    );

    // The customer's share joins the sum: another function, as deterministic.
    let c = CustomerSeed::from_bytes([9; 32]).prf_share(&a).unwrap();
    let with_c = cluster
        .prf_evaluate(&a, b"keyfrag/aes/v1 input", Some(&c))
        .unwrap();
    assert_ne!(*x, *with_c);
    assert_eq!(
        *with_c,
        *cluster
            .prf_evaluate(&a, b"keyfrag/aes/v1 input", Some(&c))
            .unwrap()
    );

    let keys = cluster.list_keys_by_cell().unwrap();
    for cell in &keys {
        assert!(
            cell.iter()
                .any(|k| k.uid == a && k.kind == "prf" && k.epoch == 1)
        );
    }
    cluster.delete_key(&a).unwrap();
    let err = cluster.prf_evaluate(&a, b"x", None).unwrap_err();
    assert_eq!(err.kind, ErrorKind::KeyNotFound, "{}", err.message);
    assert!(cluster.list_keys().unwrap().iter().all(|k| k.uid != a));
}

#[test]
fn evaluation_needs_a_user_login() {
    let bed = Testbed::start(TestbedOptions::default());
    let uid = uid_hex().unwrap();
    let cluster = bed.cluster();
    cluster.prf_create(&uid, None).unwrap();
    let err = cluster.prf_evaluate(&uid, b"x", None).unwrap_err();
    assert_eq!(err.kind, ErrorKind::UserNotLoggedIn);
}

#[test]
fn a_cell_down_fails_creation_whole_and_names_itself() {
    let mut bed = Testbed::start(TestbedOptions::default());
    let cluster = logged_in(&bed);
    let kept = uid_hex().unwrap();
    cluster.prf_create(&kept, None).unwrap();
    bed.stop_cell(1);
    let cell1 = &cluster.cell_names()[1];

    let err = cluster.prf_evaluate(&kept, b"x", None).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Device);
    assert!(err.message.contains(cell1.as_str()), "{}", err.message);

    let uid = uid_hex().unwrap();
    let err = cluster.prf_create(&uid, None).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Device);
    assert!(err.message.contains(cell1.as_str()), "{}", err.message);
    // The cells that did create their share deleted it again.
    for i in [0, 2] {
        let keys = one_cell(&bed, i).list_keys().unwrap();
        assert!(keys.iter().all(|k| k.uid != uid), "cell {i} kept a share");
    }
    bed.start_cell(1);
    cluster
        .prf_evaluate(&kept, b"x", None)
        .expect("all cells back");
}

#[test]
fn a_cell_whose_share_was_replaced_is_named_and_nothing_combined() {
    let bed = Testbed::start(TestbedOptions::default());
    let cluster = logged_in(&bed);
    let uid = uid_hex().unwrap();
    cluster.prf_create(&uid, None).unwrap();
    let before = cluster.prf_evaluate(&uid, b"x", None).unwrap();

    // Cell 2 loses its share and makes a new one, with a list of its own.
    let lone = one_cell(&bed, 2);
    lone.delete_key(&uid).unwrap();
    lone.prf_create(&uid, None).unwrap();
    let err = cluster.prf_evaluate(&uid, b"x", None).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Device);
    let cell2 = &cluster.cell_names()[2];
    assert!(err.message.contains(cell2.as_str()), "{}", err.message);
    assert!(err.message.contains("commitments"), "{}", err.message);

    // Another key's output never stands in: a new key over all cells is another function.
    let other = uid_hex().unwrap();
    cluster.prf_create(&other, None).unwrap();
    assert_ne!(*before, *cluster.prf_evaluate(&other, b"x", None).unwrap());
}

#[test]
fn session_keys_lease_and_become_permanent() {
    let bed = Testbed::start(TestbedOptions::default());
    let cluster = logged_in(&bed);
    let uid = uid_hex().unwrap();
    cluster.prf_create(&uid, Some(120)).unwrap();
    let leased = |c: &Cluster| {
        c.list_keys()
            .unwrap()
            .into_iter()
            .find(|k| k.uid == uid)
            .unwrap()
            .lease_remaining_secs
    };
    assert!(leased(&cluster).is_some_and(|s| s <= 120));
    cluster
        .renew_leases(std::slice::from_ref(&uid), 600)
        .unwrap();
    assert!(leased(&cluster).is_some_and(|s| s > 120));
    cluster.make_permanent(std::slice::from_ref(&uid)).unwrap();
    assert_eq!(leased(&cluster), None);
    cluster.prf_evaluate(&uid, b"x", None).unwrap();
}

/// Refresh (issue 9 item 6): every cell's share changes, the function does not — with or
/// without the customer's share — and `refresh_all` covers PRF keys next to RSA keys.
#[test]
fn refresh_changes_every_share_and_keeps_the_function() {
    let bed = Testbed::start(TestbedOptions::default());
    let cluster = logged_in(&bed);
    let uid = uid_hex().unwrap();
    cluster.prf_create(&uid, None).unwrap();
    let c = CustomerSeed::from_bytes([4; 32]).prf_share(&uid).unwrap();
    let plain = cluster.prf_evaluate(&uid, b"data key input", None).unwrap();
    let with_c = cluster
        .prf_evaluate(&uid, b"data key input", Some(&c))
        .unwrap();
    let (epoch, before) = cluster.prf_commitments(&uid).unwrap();
    assert_eq!((epoch, before.len()), (1, 3));

    let outcome = cluster.refresh_key(&uid).expect("refresh");
    assert_eq!(outcome.epoch, 2, "{outcome:?}");
    let (epoch, after) = cluster.prf_commitments(&uid).unwrap();
    assert_eq!(epoch, 2);
    for (i, (a, b)) in before.iter().zip(&after).enumerate() {
        assert_ne!(a, b, "cell {i}'s share did not change");
    }
    assert_eq!(
        *plain,
        *cluster.prf_evaluate(&uid, b"data key input", None).unwrap()
    );
    assert_eq!(
        *with_c,
        *cluster
            .prf_evaluate(&uid, b"data key input", Some(&c))
            .unwrap()
    );
    // A new client (no epoch remembered) gets the same.
    assert_eq!(
        *plain,
        *logged_in(&bed)
            .prf_evaluate(&uid, b"data key input", None)
            .unwrap()
    );

    // Session keys are not refreshed; token PRF keys are, by refresh_all.
    let session = uid_hex().unwrap();
    cluster.prf_create(&session, Some(600)).unwrap();
    let results = cluster.refresh_all(4).unwrap();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].0, uid);
    assert_eq!(results[0].1.as_ref().unwrap().epoch, 3);
    assert_eq!(
        *plain,
        *cluster.prf_evaluate(&uid, b"data key input", None).unwrap()
    );
    let (_, third) = cluster.prf_commitments(&uid).unwrap();
    assert!(third.iter().zip(&after).all(|(a, b)| a != b));
    for cell in cluster.list_keys_by_cell().unwrap() {
        let k = cell.iter().find(|k| k.uid == uid).unwrap();
        assert_eq!(
            (k.epoch, k.previous_epoch, &k.pending),
            (3, None, &None),
            "finalized"
        );
    }
}

/// A client gone at each step of a PRF refresh: the key keeps evaluating to the same output
/// (also between COMMIT and FINALIZE, when cells serve two epochs with two lists), and the
/// next refresh rolls the run forward or starts afresh.
#[test]
fn a_client_gone_at_each_refresh_step_leaves_the_function_and_the_next_refresh_completes() {
    use keyfrag_client::cluster::{FaultAction, RefreshPoint};
    let bed = Testbed::start(TestbedOptions::default());
    let user = logged_in(&bed);
    let uid = uid_hex().unwrap();
    user.prf_create(&uid, None).unwrap();
    let want = user.prf_evaluate(&uid, b"x", None).unwrap();
    let mut epoch = 1;
    for point in [
        RefreshPoint::BeforeDeal,
        RefreshPoint::BeforePrepare,
        RefreshPoint::BeforeCommit,
        RefreshPoint::BeforeFinalize,
    ] {
        let hook = move |at: RefreshPoint| {
            if at == point {
                FaultAction::Abandon
            } else {
                FaultAction::Continue
            }
        };
        let err = bed
            .cluster()
            .refresh_key_with_faults(&uid, &hook)
            .expect_err("abandoned");
        assert!(err.message.contains("abandoned"), "{}", err.message);
        assert_eq!(
            *want,
            *user.prf_evaluate(&uid, b"x", None).unwrap(),
            "{point:?}"
        );
        assert_eq!(
            *want,
            *logged_in(&bed).prf_evaluate(&uid, b"x", None).unwrap()
        );
        let outcome = bed.cluster().refresh_key(&uid).expect("the next refresh");
        let rolled = !matches!(
            point,
            RefreshPoint::BeforeDeal | RefreshPoint::BeforePrepare
        );
        epoch += if rolled { 2 } else { 1 };
        assert_eq!(outcome.epoch, epoch, "{point:?}: {:?}", outcome.recovered);
        assert_eq!(
            *want,
            *user.prf_evaluate(&uid, b"x", None).unwrap(),
            "{point:?}"
        );
        assert_eq!(user.prf_commitments(&uid).unwrap().0, epoch);
    }
}
