#!/usr/bin/env bash
# A TLS server whose private key lives only in fragments: pkcs11-provider generates an
# RSA-2048 key pair on the token (by the cells, so the key never exists whole), `openssl req
# -x509` certifies it and the certificate is stored on the token under the key's CKA_ID.
# `openssl s_server` then serves with key and certificate loaded from the token, through
# pkcs11-provider and through the libp11 engine, and a plain `openssl s_client` completes
# TLS 1.2 (PKCS#1 v1.5 signature) and TLS 1.3 (RSA-PSS) handshakes, verifying the
# certificate and reading which signature the server made. Raw RSA is switched off for the
# token. Runs against its own dev cluster.
set -Eeuo pipefail
# Reports the failing command on the script's own stdout (fd 3), even from inside a
# redirected call, with the line that called the function it failed in.
exec 3>&1
failed() {
  local where="line $1"
  [ "${FUNCNAME[1]}" != main ] && where="$where in ${FUNCNAME[1]}, called from line ${BASH_LINENO[1]}"
  echo "not ok - $where: $2" >&3
}
trap 'failed $LINENO "$BASH_COMMAND"' ERR
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
MODULE="${KEYFRAG_MODULE:-$root/target/debug/libkeyfrag_pkcs11.so}"
KEYFRAG="${KEYFRAG_BIN:-$root/target/debug/keyfrag}"

for tool in openssl pkcs11-tool; do
  command -v "$tool" >/dev/null || { echo "not ok - $tool is not installed (scripts/deps.sh)"; exit 1; }
done
PROVIDER="$(openssl version -m | sed -E 's/^MODULESDIR: "(.*)"$/\1/')/pkcs11.so"
ENGINE="$(openssl version -e | sed -E 's/^ENGINESDIR: "(.*)"$/\1/')/pkcs11.so"
for f in "$MODULE" "$KEYFRAG" "$PROVIDER" "$ENGINE"; do
  [ -e "$f" ] || { echo "not ok - $f is missing (cargo build; scripts/deps.sh)"; exit 1; }
done

work=$(mktemp -d)
servers=()
cleanup() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  "$KEYFRAG" dev down --dir "$work/cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
eval "$("$KEYFRAG" dev up --dir "$work/cluster" 2>/dev/null)"
conf="$work/keyfrag.toml"
sed 's/^allow_raw_rsa = true$/allow_raw_rsa = false/' "$KEYFRAG_CONF" > "$conf"
unset KEYFRAG_CONF
printf 1234 > "$work/pin"
# The OpenSSL configurations are test-apps/openssl's.
render() {
  sed -e "s#@PROVIDER@#$PROVIDER#" -e "s#@ENGINE@#$ENGINE#" -e "s#@MODULE@#$MODULE#" \
    -e "s#@KEYFRAG_CONF@#$conf#" -e "s#@PIN_FILE@#$work/pin#" "$here/../openssl/$1" > "$work/$1"
}
render provider.cnf
render engine.cnf
prov() { OPENSSL_CONF="$work/provider.cnf" openssl "$@"; }
plain() { OPENSSL_CONF=/dev/null openssl "$@"; }
p11() { KEYFRAG_CONF="$conf" pkcs11-tool --module "$MODULE" --token-label keyfrag-dev --login --pin 1234 "$@"; }
passed=0
check() { echo "ok - $1"; passed=$((passed + 1)); }

key="pkcs11:token=keyfrag-dev;object=tls;type=private"
prov genpkey -propquery provider=pkcs11 -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
  -pkeyopt "pkcs11_uri:pkcs11:token=keyfrag-dev;object=tls;id=%0e%01" -out "$work/key.uri.pem"
grep -q "BEGIN PKCS#11 PROVIDER URI" "$work/key.uri.pem"
p11 --list-objects --type privkey --id 0e01 2>/dev/null > "$work/privkey.txt"
grep -q "never extractable, local" "$work/privkey.txt"
check "openssl genpkey (pkcs11-provider) generated an RSA-2048 pair on the token: local, never extractable"

prov req -x509 -new -key "$key" -sha256 -days 30 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=serverAuth" -out "$work/cert.pem" 2>/dev/null
plain x509 -in "$work/cert.pem" -outform DER -out "$work/cert.der"
p11 --write-object "$work/cert.der" --type cert --id 0e01 --label tls >/dev/null 2>&1
check "self-signed server certificate made with the token key and stored on the token (CKA_ID 0e01)"

# Starts `openssl s_server` (arguments: the OpenSSL configuration, then the server's options)
# on a free loopback port and sets $port once it accepts connections. The subshell execs
# openssl, so the recorded pid is the server's own.
start_server() {
  local log="$work/server.${#servers[@]}.log"
  (OPENSSL_CONF="$work/$1" exec openssl s_server -accept 127.0.0.1:0 -www "${@:2}" >"$log" 2>&1 3>&-) &
  servers+=($!)
  port=""
  for _ in $(seq 300); do
    port=$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$log")
    [ -n "$port" ] && return 0
    kill -0 "${servers[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "not ok - s_server did not start:"
  cat "$log"
  exit 1
}

# One handshake and one HTTP request from a client without any PKCS#11 configuration;
# $1: the server's name for the report, $2: TLS version (1_2 or 1_3), $3: -sigalgs list,
# $4: the signature type the client must report.
handshake() {
  local out="$work/client.out"
  printf 'GET / HTTP/1.0\r\n\r\n' | plain s_client -connect "127.0.0.1:$port" -servername localhost \
    -CAfile "$work/cert.pem" -verify_return_error -verify_hostname localhost "-tls$2" \
    -sigalgs "$3" -ign_eof >"$out" 2>&1
  grep -q "^New, TLSv${2/_/.}, Cipher is " "$out"
  grep -q "^Peer signature type: $4$" "$out"
  grep -q "^Peer signing digest: SHA256$" "$out"
  grep -q "Verify return code: 0 (ok)" "$out"
  grep -q "^HTTP/1.0 200 ok" "$out"
  check "$1: TLS ${2/_/.} handshake verified by s_client, server signature $4 (SHA-256), HTTP 200"
}

start_server provider.cnf -key "$key" -cert "pkcs11:token=keyfrag-dev;object=tls;type=cert"
handshake "s_server (pkcs11-provider, key and certificate from the token)" 1_2 RSA+SHA256 RSA
handshake "s_server (pkcs11-provider, key and certificate from the token)" 1_3 rsa_pss_rsae_sha256 RSA-PSS

start_server engine.cnf -engine pkcs11 -keyform engine -key "$key;pin-value=1234" -cert "$work/cert.pem"
handshake "s_server (libp11 engine)" 1_2 RSA+SHA256 RSA
handshake "s_server (libp11 engine)" 1_3 rsa_pss_rsae_sha256 RSA-PSS

echo "$passed passed, 0 failed"
