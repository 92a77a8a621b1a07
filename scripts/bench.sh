#!/usr/bin/env bash
# keyfrag against SoftHSMv2, measured by the same code in the same run (docs/BENCHMARKS.md):
# release build, a throw-away SoftHSM token, a 3-cell loopback dev cluster started by the
# benchmark itself, RSA-2048/3072 at 1, 2, 8 and 32 sessions, 5 s per point, with the
# partial kernel against OpenSSL (one thread and all cores: the physical limit) and the
# 1-session latency overhead from the cells' own compute times in the same run; then the
# 100,000-operation memory check, which prints PASS or FAIL. Writes
# docs/benchmarks/latest.{json,txt} and docs/benchmarks/latest-memory.json.
#
#   scripts/bench.sh                      # the full run (about 25 minutes on 2 cores)
#   BENCH_SECONDS=2 scripts/bench.sh           # shorter points
#   BENCH_MEMORY_OPS=20000 scripts/bench.sh    # memory check length (0 skips it)
#   scripts/bench.sh --ops sign-pkcs,sign-pss  # extra arguments go to the throughput run
set -euo pipefail
cd "$(dirname "$0")/.."
SOFTHSM_MODULE="${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}"
MEMORY_OPS="${BENCH_MEMORY_OPS:-100000}"
SECONDS_PER_POINT="${BENCH_SECONDS:-5}"
OUT=docs/benchmarks

if [ ! -e "$SOFTHSM_MODULE" ] || ! command -v softhsm2-util >/dev/null; then
  scripts/deps.sh
fi
cargo build --release --workspace --bins --lib

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/tokens"
cat >"$work/softhsm2.conf" <<CONF
directories.tokendir = $work/tokens
objectstore.backend = file
log.level = ERROR
CONF
export SOFTHSM2_CONF="$work/softhsm2.conf"
softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 12345678 >/dev/null

mkdir -p "$OUT"
bench() {
  target/release/keyfrag bench --dev-cluster \
    --module target/release/libkeyfrag_pkcs11.so --pin 1234 \
    --compare "$SOFTHSM_MODULE" --compare-pin 1234 --compare-token-label bench \
    "$@"
}
{
  echo "# scripts/bench.sh $*  ($(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
  bench --bits 2048,3072 --sessions 1,2,8,32 --seconds "$SECONDS_PER_POINT" --json "$OUT/latest.json" "$@"
} | tee "$OUT/latest.txt"
if [ "$MEMORY_OPS" != 0 ]; then
  bench --bits 2048 --memory "$MEMORY_OPS" --memory-sessions 8 \
    --json "$OUT/latest-memory.json" | tee -a "$OUT/latest.txt"
fi
