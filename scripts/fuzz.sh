#!/usr/bin/env bash
# Runs each libFuzzer target (fuzz/fuzz_targets/) for a bounded time, then merges what it
# found into a minimal corpus in fuzz/corpus/<target>/ (committed; replayed on stable by the
# owning crates' tests/fuzz_replay.rs). Crash inputs land in fuzz/artifacts/<target>/ and make
# the script fail; copy each into fuzz/corpus/<target>/regression-<name> once it is fixed.
#
#   scripts/fuzz.sh [--seconds N] [--max-files N] [TARGET...]
#
# Defaults: 60 s for every target; at most 300 files committed per corpus. The parsers built on
# the toml crate have thousands of coverage features, so their merged sets are cut to a sample
# (by hashed name: the choice is arbitrary but stable); the full set stays in
# fuzz/target/work-corpus/ for the next run on this machine.
#
# Only a stable toolchain is installed: RUSTC_BOOTSTRAP=1 lets it accept the nightly-only
# sanitizer flags cargo-fuzz passes. Builds are release with debug assertions and overflow
# checks, under AddressSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
max_files=300
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --max-files) max_files="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi

# Each input is small: templates, parameters, configs and request bodies are bounded, and
# long inputs only slow the search.
max_len=4096
build_flags=(-O -a)
(cd fuzz && cargo fuzz build "${build_flags[@]}")
bin_dir=fuzz/target/x86_64-unknown-linux-gnu/release
work=fuzz/target/work-corpus
crashed=()
printf '%-22s %12s %8s %8s %s\n' target executions exec/s corpus result > fuzz/target/summary.txt

for t in "${targets[@]}"; do
  echo "== $t: ${seconds}s"
  corpus="fuzz/corpus/$t"
  mkdir -p "$corpus" "$work/$t" "fuzz/artifacts/$t"
  log="fuzz/target/$t.log"
  result=ok
  # New inputs go to the work directory (first); the committed corpus only seeds.
  if ! "$bin_dir/$t" "$work/$t" "$corpus" -max_total_time="$seconds" -max_len="$max_len" \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1; then
    result=CRASH
    crashed+=("$t")
    tail -30 "$log"
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  # Merge into a fresh minimal set; regression inputs stay whatever coverage they add.
  merged=$(mktemp -d)
  "$bin_dir/$t" -merge=1 -max_len="$max_len" "$merged" "$corpus" "$work/$t" \
    >"fuzz/target/$t.merge.log" 2>&1
  find "$merged" -type f ! -name 'regression-*' -printf '%f\n' | sort \
    | tail -n +"$((max_files + 1))" | while read -r f; do rm -f "$merged/$f"; done
  cp "$corpus"/regression-* "$merged"/ 2>/dev/null || true
  rm -rf "$corpus"
  mv "$merged" "$corpus"
  chmod 755 "$corpus"
  n=$(find "$corpus" -type f | wc -l)
  printf '%-22s %12s %8s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "$n" "$result" \
    | tee -a fuzz/target/summary.txt
done

echo
cat fuzz/target/summary.txt
if [ ${#crashed[@]} -gt 0 ]; then
  echo "crashes in: ${crashed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
