//! The `client_config` fuzz corpus (fuzz/corpus/client_config/) replayed on stable.

use std::path::PathBuf;

#[test]
fn client_config_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/client_config");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| keyfrag_client::fuzzing::client_config(&data));
        assert!(outcome.is_ok(), "{} panics", path.display());
        count += 1;
    }
    assert!(count > 0, "empty corpus in {}", dir.display());
}
