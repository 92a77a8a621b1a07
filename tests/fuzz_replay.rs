//! The module's fuzz corpora (fuzz/corpus/<target>/, kept small and committed) replayed on
//! the stable toolchain: every input the fuzzer kept, and every crash it ever found, runs
//! through the same entry point as the fuzz target.

use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
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
fn attribute_template_corpus() {
    replay(
        "attribute_template",
        keyfrag_pkcs11::fuzzing::attribute_template,
    );
}

#[test]
fn mechanism_parameters_corpus() {
    replay(
        "mechanism_parameters",
        keyfrag_pkcs11::fuzzing::mechanism_parameters,
    );
}
