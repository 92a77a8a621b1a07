#!/usr/bin/env bash
# The cryptoki crate's published test suite against keyfrag. The suite comes from the cargo
# registry (the crate version pinned in pkcs11-tests/Cargo.toml), is copied to
# target/cryptoki-suite/ and run there with TEST_PKCS11_MODULE pointing at the module, against
# a cluster of its own: every test re-initialises the token with SO PIN abcdef654321
# (C_InitToken) and sets user PIN fedcba123456 (C_InitPIN), so the cluster's token is made
# with that SO PIN. Tests in pkcs11-tests/skip.txt (each with its reason) are skipped;
# every other test must pass.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
MODULE="${KEYFRAG_MODULE:-$root/target/debug/libkeyfrag_pkcs11.so}"
KEYFRAG="${KEYFRAG_BIN:-$root/target/debug/keyfrag}"
build="$root/target/cryptoki-suite"
work=$(mktemp -d)
cleanup() { "$KEYFRAG" dev down --dir "$work/cluster" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

for f in "$MODULE" "$KEYFRAG"; do
  [ -e "$f" ] || { echo "not ok - $f is missing (cargo build -p keyfrag-pkcs11 -p keyfrag-cli)"; exit 1; }
done

# Where cargo unpacked the pinned cryptoki crate (fetching it if needed).
crate_manifest=$(cargo metadata --manifest-path "$here/Cargo.toml" --format-version 1 --locked |
  grep -o '"manifest_path":"[^"]*/cryptoki-[0-9][0-9.]*/Cargo.toml"' | head -n 1 | cut -d'"' -f4)
[ -n "$crate_manifest" ] || { echo "not ok - cannot locate the cryptoki crate's source"; exit 1; }
suite="$(dirname "$crate_manifest")/tests"
echo "suite: $suite"

rm -rf "$build/tests" "$build/src"
mkdir -p "$build"
cp "$here/Cargo.toml" "$here/Cargo.lock" "$build/"
cp -r "$here/src" "$suite" "$build/"
chmod -R u+w "$build/tests"

# The skip list: NAME then a reason; a line without a reason, or naming no test, is an error.
skips=()
while read -r name reason; do
  case "$name" in '' | '#'*) continue ;; esac
  [ -n "$reason" ] || { echo "not ok - skip.txt: $name has no reason"; exit 1; }
  grep -q "fn $name(" "$build"/tests/*.rs ||
    { echo "not ok - skip.txt: no test named $name in the suite"; exit 1; }
  skips+=(--skip "$name")
done < "$here/skip.txt"

cargo test --manifest-path "$build/Cargo.toml" --locked --tests --no-run --quiet

eval "$("$KEYFRAG" dev up --dir "$work/cluster" --so-pin abcdef654321 --user-pin fedcba123456 2>/dev/null)"
set +e
KEYFRAG_LOG="${KEYFRAG_LOG:-error}" TEST_PKCS11_MODULE="$MODULE" \
  cargo test --manifest-path "$build/Cargo.toml" --locked --tests --no-fail-fast -- \
  --exact --test-threads=1 "${skips[@]}" 2>&1 | tee "$work/out" |
  grep --line-buffered -E '^test |^     Running '
status=${PIPESTATUS[0]}
set -e

sum() { grep '^test result:' "$work/out" | grep -o "[0-9]* $1" | awk '{ n += $1 } END { print n + 0 }'; }
passed=$(sum passed)
failed=$(sum failed)
ignored=$(sum ignored)
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  grep -A 12 -E '^---- ' "$work/out" || true
  echo "not ok - the cryptoki suite failed"
  status=1
fi
echo "$passed passed, $failed failed, $((${#skips[@]} / 2)) skipped by pkcs11-tests/skip.txt, $ignored ignored by the suite itself"
exit "$status"
