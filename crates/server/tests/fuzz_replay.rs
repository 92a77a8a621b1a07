//! The cell's fuzz corpora (fuzz/corpus/<target>/, kept small and committed) replayed on the
//! stable toolchain through the same entry points as the fuzz targets.

use std::path::PathBuf;

use keyfrag_server::fuzzing;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: {} panics", path.display());
        count += 1;
    }
    assert!(count > 0, "{target}: empty corpus in {}", dir.display());
}

#[test]
fn cell_config_corpus() {
    replay("cell_config", fuzzing::cell_config);
}

#[test]
fn request_body_corpus() {
    replay("request_body", fuzzing::request_body);
}

#[test]
fn prf_request_body_corpus() {
    replay("prf_request_body", fuzzing::prf_request_body);
}

#[test]
fn keygen_body_corpus() {
    replay("keygen_body", fuzzing::keygen_body);
}

#[test]
fn relay_envelope_corpus() {
    replay("relay_envelope", fuzzing::relay_envelope);
}
