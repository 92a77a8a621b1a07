#!/usr/bin/env bash
# The operator's set-up with the real binaries, three cells as background processes:
# keyfrag-server init (idempotent), keyfrag cluster create (a wrong fingerprint refused with
# nothing written, then the right ones), cells started on the result, keyfrag token create,
# keyfrag access-key issue / list / revoke (the module config it writes lists the token in
# pkcs11-tool; after the revoke the cells refuse the key), and keyfrag cell rotate-master-key
# while the cells serve (an imported key signs before and after; OpenSSL verifies both).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
MODULE="${KEYFRAG_MODULE:-$root/target/debug/libkeyfrag_pkcs11.so}"
KEYFRAG="${KEYFRAG_BIN:-$root/target/debug/keyfrag}"
SERVER="${KEYFRAG_SERVER_BIN:-$root/target/debug/keyfrag-server}"
for tool in pkcs11-tool openssl python3; do
  command -v "$tool" >/dev/null || { echo "not ok - $tool is not installed (scripts/deps.sh installs it)"; exit 1; }
done
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "not ok - line $LINENO: $BASH_COMMAND"' ERR
passed=0
check() { echo "ok - $1"; passed=$((passed + 1)); }
has() { grep "$@" >/dev/null; }

ports=$(python3 -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')
set -- $ports
fps=()
for i in 0 1 2; do
  port=$1; shift
  out=$("$SERVER" init --dir "$work/cell-$i" --url "https://127.0.0.1:$port")
  fps+=("$(echo "$out" | awk '/^fingerprint/ { print $2 }')")
  again=$("$SERVER" init --dir "$work/cell-$i")
  [ "$(echo "$again" | awk '/^fingerprint/ { print $2 }')" = "${fps[$i]}" ]
done
check "keyfrag-server init: three cells; a rerun prints the same card"

cards=(--card "$work/cell-0/card.toml" --card "$work/cell-1/card.toml" --card "$work/cell-2/card.toml")
if "$KEYFRAG" cluster create "${cards[@]}" --yes-fingerprints "${fps[0]},${fps[0]},${fps[2]}" \
  --out "$work/ops" 2>"$work/err"; then exit 1; fi
has "does not match" "$work/err"
[ ! -e "$work/ops" ]
check "cluster create refuses a wrong fingerprint and writes nothing"
"$KEYFRAG" cluster create "${cards[@]}" --yes-fingerprints "${fps[0]},${fps[1]},${fps[2]}" \
  --out "$work/ops" >/dev/null
for i in 0 1 2; do
  cp "$work/ops/cluster.toml" "$work/cell-$i/cluster.toml"
  "$SERVER" run --config "$work/cell-$i/cell.toml" >"$work/cell-$i.out" 2>"$work/cell-$i.log" &
  pids+=($!)
done
for i in 0 1 2; do
  for _ in $(seq 100); do has listening "$work/cell-$i.out" && break; sleep 0.1; done
  has listening "$work/cell-$i.out"
done
check "cluster create with the right fingerprints; the cells start on its cluster.toml"

printf 'so-pin-1234\n' >"$work/so.pin"
"$KEYFRAG" token create --label prod --cluster "$work/ops" --so-pin-file "$work/so.pin" | has "created on cell-0, cell-1, cell-2"
"$KEYFRAG" token create --label prod --cluster "$work/ops" --so-pin-file "$work/so.pin" | has unchanged
check "token create on every cell; rerun unchanged"

"$KEYFRAG" access-key issue --token prod --name app --cluster "$work/ops" | has "issued on cell-0, cell-1, cell-2"
export KEYFRAG_CONF="$work/ops/keyfrag.toml"
tool() { pkcs11-tool --module "$MODULE" "$@"; }
tool --list-slots 2>/dev/null | has "token label *: prod"
tool --token-label prod --login --login-type so --so-pin so-pin-1234 --init-pin --pin 1234 >/dev/null 2>&1
check "access-key issue: the module config it writes reaches the token; the SO PIN sets a user PIN"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/key.pem" 2>/dev/null
openssl pkey -in "$work/key.pem" -outform DER -out "$work/key.der"
openssl pkey -in "$work/key.pem" -pubout -out "$work/pub.pem"
p11() { tool --token-label prod --login --pin 1234 "$@"; }
p11 --write-object "$work/key.der" --type privkey --id 01 --label op-key >/dev/null 2>&1
echo "before and after" >"$work/msg"
sign_and_verify() {
  p11 --sign --id 01 -m SHA256-RSA-PKCS --input-file "$work/msg" --output-file "$work/sig" >/dev/null 2>&1
  openssl dgst -sha256 -verify "$work/pub.pem" -signature "$work/sig" "$work/msg" | has "Verified OK"
}
sign_and_verify
"$KEYFRAG" cell rotate-master-key --cluster "$work/ops" | grep -c "now seals every share (1 re-sealed)" | has '^3$'
sign_and_verify
for i in 0 1 2; do ls "$work/cell-$i"/master.key.retired-* >/dev/null; done
check "cell rotate-master-key on every cell while they serve; the key signs before and after (OpenSSL verifies)"

"$KEYFRAG" access-key list --token prod --cluster "$work/ops" | has "^app .*active$"
"$KEYFRAG" access-key revoke --token prod --name app --cluster "$work/ops" | has "revoked on cell-0, cell-1, cell-2"
"$KEYFRAG" access-key list --token prod --cluster "$work/ops" | has "^app .*revoked$"
if p11 --sign --id 01 -m SHA256-RSA-PKCS --input-file "$work/msg" --output-file "$work/sig2" >/dev/null 2>&1; then exit 1; fi
check "access-key list shows it active; after revoke it is listed revoked and the module is refused"

echo "$passed passed, 0 failed"
