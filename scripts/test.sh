#!/usr/bin/env bash
# The test command: installs what the tests need, then formatting, lints, every Rust test,
# and the interop programs in test-apps/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --bins --lib
cargo test --workspace
scripts/soak.sh --seconds 30 # short soak (issue 8): zero errors, flat RSS, no fd growth
for app in test-apps/*/interop.sh; do
  echo "== $app"
  bash "$app"
done
echo "== pkcs11-tests/run.sh" && bash pkcs11-tests/run.sh # cryptoki's published suite
