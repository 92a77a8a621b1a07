#!/usr/bin/env bash
# Bounded soak: a 3-cell dev cluster, keys imported through the module, and signing at full
# concurrency (`keyfrag bench`, one thread per session) for --seconds. Samples the resident
# memory (VmRSS) and open file descriptors of the process hosting the module and of every
# cell, and fails on any signing error, on memory growth past the bound after warm-up, or on
# descriptor growth.
#
#   scripts/soak.sh [--seconds N] [--sessions N] [--bits N] [--rss-slack-mib N]
#
# Defaults: 600 s, 32 sessions, RSA-2048, 16 MiB slack. CI runs a short one (scripts/test.sh).
# The signing window (after key import) is split in quarters: the first holds the warm-up
# (connections opened, caches and allocator arenas filled), the second gives the baseline, the
# fourth the end. Memory: the end's highest RSS may exceed the baseline's highest by
# max(slack, 15 %). Descriptors: connections come and go under load (a pool opens one when all
# are busy and drops it when idle), so peaks are noise; a leak raises the floor, so the end's
# lowest count may exceed the baseline's lowest by at most 4 — or, in a run too short for the
# floors to settle (quarters under 20 samples, e.g. CI's 30 s), by one pool's worth (sessions).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

seconds=600
sessions=32
bits=2048
slack_mib=16
interval=2
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --sessions) sessions="$2"; shift 2 ;;
    --bits) bits="$2"; shift 2 ;;
    --rss-slack-mib) slack_mib="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

MODULE="${KEYFRAG_MODULE:-$root/target/debug/libkeyfrag_pkcs11.so}"
KEYFRAG="${KEYFRAG_BIN:-$root/target/debug/keyfrag}"
if [ -z "${KEYFRAG_MODULE:-}${KEYFRAG_BIN:-}" ]; then
  cargo build -q -p keyfrag-pkcs11 --lib -p keyfrag-cli -p keyfrag-server --bins ||
    { echo "not ok - build failed" >&2; exit 1; }
fi

work=$(mktemp -d)
bench_pid=""
cleanup() {
  [ -n "$bench_pid" ] && kill "$bench_pid" 2>/dev/null || true
  "$KEYFRAG" dev down --dir "$work/cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

env_lines=$("$KEYFRAG" dev up --dir "$work/cluster" 2>"$work/dev-up.err") ||
  { cat "$work/dev-up.err" >&2; echo "not ok - dev up failed" >&2; exit 1; }
eval "$env_lines"
cell_pids=()
cell_names=()
for f in "$work"/cluster/cells/*/pid; do
  cell_pids+=("$(cat "$f")")
  cell_names+=("$(basename "$(dirname "$f")")")
done
[ ${#cell_pids[@]} -ge 2 ] || { echo "no cell pids under $work/cluster" >&2; exit 1; }

# Two signing mechanisms, each for half the time; the warm-up is the first quarter's start.
ops=sign-pkcs,sign-pss
per_op=$(awk -v s="$seconds" 'BEGIN { printf "%.1f", s / 2 }')
warmup=$(awk -v s="$seconds" 'BEGIN { w = s / 20; if (w < 2) w = 2; printf "%.1f", w }')
"$KEYFRAG" bench --module "$MODULE" --token-label keyfrag-dev --pin 1234 --bits "$bits" \
  --sessions "$sessions" --ops "$ops" --seconds "$per_op" --warmup "$warmup" \
  --json "$work/bench.json" >"$work/bench.out" 2>&1 &
bench_pid=$!

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
samples="$work/samples.tsv"
started=$(date +%s)
# One line per sample: seconds since start, then rss and fds of the module host and each cell.
while kill -0 "$bench_pid" 2>/dev/null; do
  line="$(($(date +%s) - started))"
  for pid in "$bench_pid" "${cell_pids[@]}"; do
    line+=$'\t'"$(rss_kib "$pid")"$'\t'"$(fds "$pid")"
  done
  echo "$line" >>"$samples"
  sleep "$interval"
done
bench_rc=0
wait "$bench_pid" || bench_rc=$?
bench_pid=""
elapsed=$(($(date +%s) - started))
for pid in "${cell_pids[@]}"; do
  kill -0 "$pid" 2>/dev/null || { echo "not ok - cell pid $pid died during the soak" >&2; exit 1; }
done
if [ "$bench_rc" -ne 0 ]; then
  cat "$work/bench.out" >&2
  echo "not ok - keyfrag bench exited with $bench_rc" >&2
  exit 1
fi

# Preparing (importing the keys, checking them) comes first and takes a while; the measured
# window is the run's last `seconds + 2 × warm-up` seconds. Dead samples (a process that had
# already exited) read as 0 and are dropped; the window's samples are split in quarters.
window_start=$(awk -F'\t' -v span="$(awk -v s="$seconds" -v w="$warmup" 'BEGIN { print s + 2 * w }')" \
  'END { print $1 - span }' "$samples")
ops_done=$(grep -o '"ops": [0-9]*' "$work/bench.json" | awk '{ s += $2 } END { print s + 0 }')
errors=$(grep -o '"errors": [0-9]*' "$work/bench.json" | awk '{ s += $2 } END { print s + 0 }')
passed=0
failed=0
check() {
  if [ "$1" = ok ]; then echo "ok - $2"; passed=$((passed + 1)); else echo "not ok - $2"; failed=$((failed + 1)); fi
}
[ "$errors" -eq 0 ] && [ "$ops_done" -gt 0 ] && r=ok || r=fail
check "$r" "$ops_done signatures by $sessions sessions in ${elapsed}s, $errors errors"

names=(module "${cell_names[@]}")
for i in "${!names[@]}"; do
  rss_col=$((2 + 2 * i))
  fd_col=$((3 + 2 * i))
  read -r n base_rss end_rss base_fd end_fd quarter < <(awk -F'\t' -v r="$rss_col" -v f="$fd_col" \
    -v from="$window_start" '
    $1 >= from && $r > 0 { n++; rss[n] = $r; fd[n] = $f }
    END {
      q = int(n / 4); if (q < 1) q = 1
      bf = ef = 1e9
      for (k = q + 1; k <= 2 * q; k++) { if (rss[k] > br) br = rss[k]; if (fd[k] < bf) bf = fd[k] }
      for (k = n - q + 1; k <= n; k++) { if (rss[k] > er) er = rss[k]; if (fd[k] < ef) ef = fd[k] }
      print n, br + 0, er + 0, bf + 0, ef + 0, q
    }' "$samples")
  bound=$((base_rss + (base_rss * 15 / 100 > slack_mib * 1024 ? base_rss * 15 / 100 : slack_mib * 1024)))
  [ "$n" -ge 4 ] && [ "$end_rss" -le "$bound" ] && r=ok || r=fail
  check "$r" "${names[$i]}: RSS $((base_rss / 1024)) MiB after warm-up, $((end_rss / 1024)) MiB at the end (bound $((bound / 1024)) MiB, $n samples)"
  # A short run's quarters hold a few samples, whose floor can still catch a burst of pooled
  # connections (up to one per session): there the bound allows a pool's worth; a long run's
  # floors settle and allow 4 (see the header).
  fd_slack=4
  [ "$quarter" -lt 20 ] && fd_slack=$sessions
  [ "$n" -ge 4 ] && [ "$end_fd" -le $((base_fd + fd_slack)) ] && r=ok || r=fail
  check "$r" "${names[$i]}: at least $base_fd open descriptors after warm-up, at least $end_fd at the end (bound $((base_fd + fd_slack)))"
done
if [ -n "${SOAK_SAMPLES_OUT:-}" ]; then cp "$samples" "$SOAK_SAMPLES_OUT"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
