//! `keyfrag doctor` against an in-process cluster: healthy (every check ok, a signature
//! verified), one cell stopped, a wrong TLS pin, a bad config — each with its exact FAIL line
//! and fix, and a failing result.

use std::path::{Path, PathBuf};

use keyfrag_cli::doctor::{DoctorOptions, run};
use keyfrag_cli::testbed::{Testbed, TestbedOptions};
use keyfrag_client::Config;

fn doctor(config: &Path, pin_file: Option<PathBuf>) -> (bool, Vec<String>) {
    let mut out = Vec::new();
    let ok = run(
        &DoctorOptions {
            config: Some(config.to_path_buf()),
            pin_file,
            token: None,
        },
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    (ok, text.lines().map(str::to_string).collect())
}

fn line<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{}", lines.join("\n")))
}

#[test]
fn healthy_cluster_passes_every_check_and_signs() {
    let bed = Testbed::start(TestbedOptions::default());
    let pin = bed.dir.path().join("pin");
    std::fs::write(&pin, "1234\n").unwrap();
    let (ok, lines) = doctor(&bed.config_path, Some(pin));
    assert!(ok, "{}", lines.join("\n"));
    for l in &lines[..lines.len() - 1] {
        assert!(l.starts_with("ok   "), "{l}");
    }
    assert_eq!(lines.last().unwrap(), "doctor: every check passed");
    for cell in ["cell-a", "cell-b", "cell-c"] {
        line(
            &lines,
            &format!("ok   keyfrag-test/{cell} reachable: https://127.0.0.1:"),
        );
        line(&lines, &format!("ok   keyfrag-test/{cell} partial: "));
    }
    line(&lines, "ok   keyfrag-test versions: keyfrag-server ");
    line(&lines, "ok   keyfrag-test metadata: hash ");
    line(&lines, "ok   keyfrag-test signature: ");
    // The test key is gone again.
    assert!(bed.cluster().list_keys().unwrap().is_empty());
}

#[test]
fn stopped_cell_wrong_pin_and_bad_config_each_fail_with_a_fix() {
    let mut bed = Testbed::start(TestbedOptions::default());
    let config = Config::load(&bed.config_path).unwrap();
    let url_b = config.tokens[0].cells[1].url.clone();

    // Without a PIN: the partial checks are skipped, nothing fails.
    let (ok, lines) = doctor(&bed.config_path, None);
    assert!(ok, "{}", lines.join("\n"));
    line(
        &lines,
        "skip keyfrag-test partials: cells serve partials only to a logged-in user",
    );

    // One cell stopped.
    bed.stop_cell(1);
    let (ok, lines) = doctor(&bed.config_path, None);
    assert!(!ok);
    let fail = line(&lines, "FAIL keyfrag-test/cell-b reachable: ");
    assert!(
        fail.starts_with(&format!(
            "FAIL keyfrag-test/cell-b reachable: no answer from {url_b} ("
        )),
        "{fail}"
    );
    assert!(
        fail.ends_with(
            "; fix: start cell cell-b (keyfrag-server run --config …), or correct its url / \
             open the firewall"
        ),
        "{fail}"
    );
    line(&lines, "ok   keyfrag-test/cell-a reachable");
    line(
        &lines,
        "skip keyfrag-test partials: not every cell is reachable",
    );
    assert_eq!(lines.last().unwrap(), "doctor: 1 check(s) failed");
    bed.start_cell(1);

    // Cell b pinned to a CA that did not sign its certificate.
    let other = keyfrag_server::tls::dev_certificates(&["127.0.0.1".into()]).unwrap();
    let wrong_ca = bed.dir.path().join("other-ca.pem");
    std::fs::write(&wrong_ca, &other.ca_pem).unwrap();
    let mut pinned_wrong = config.clone();
    pinned_wrong.tokens[0].cells[1].ca = wrong_ca.clone();
    let wrong_conf = bed.dir.path().join("wrong-pin.toml");
    std::fs::write(&wrong_conf, toml::to_string(&pinned_wrong).unwrap()).unwrap();
    let (ok, lines) = doctor(&wrong_conf, None);
    assert!(!ok);
    let fail = line(&lines, "FAIL keyfrag-test/cell-b reachable: ");
    assert!(
        fail.starts_with(&format!(
            "FAIL keyfrag-test/cell-b reachable: the TLS certificate at {url_b} is not signed \
             by the CA pinned in {} (",
            wrong_ca.display()
        )),
        "{fail}"
    );
    assert!(
        fail.ends_with(&format!(
            "; fix: copy the CA of cell cell-b (its ca.pem) to {}, or correct the url if it \
             points at another server",
            wrong_ca.display()
        )),
        "{fail}"
    );
    line(&lines, "ok   keyfrag-test/cell-c reachable");

    // A config that does not parse: one FAIL naming file and line; nothing else is tried.
    let bad = bed.dir.path().join("bad.toml");
    std::fs::write(&bad, "[[token]]\nlabel = \"x\"\ncells = 3\n").unwrap();
    let (ok, lines) = doctor(&bad, None);
    assert!(!ok);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("FAIL config: config {}: line 3", bad.display())),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].ends_with(
            "; fix: correct the file (the message names it and the line), or point \
             KEYFRAG_CONF at the right one"
        ),
        "{}",
        lines[0]
    );
}
