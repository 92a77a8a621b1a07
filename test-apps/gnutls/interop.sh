#!/usr/bin/env bash
# GnuTLS against keyfrag (module loaded with --provider): `p11tool --generate-privkey`
# generates an RSA-2048 key pair on the token (by the cells); `certtool
# --generate-self-signed` certifies it with the token key, signing with PKCS#1 v1.5 and with
# RSA-PSS (both verified by certtool and by OpenSSL); `p11tool --write` stores the
# certificate under the key's CKA_ID and `p11tool --list-all` shows the three objects;
# `gnutls-serv` serves TLS 1.2 and 1.3 with key and certificate from the token to
# `openssl s_client`. Raw RSA is switched off for the token. Runs against its own dev cluster.
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

for tool in p11tool certtool gnutls-serv openssl; do
  command -v "$tool" >/dev/null || { echo "not ok - $tool is not installed (scripts/deps.sh)"; exit 1; }
done
for f in "$MODULE" "$KEYFRAG"; do
  [ -e "$f" ] || { echo "not ok - $f is missing (cargo build)"; exit 1; }
done

work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  "$KEYFRAG" dev down --dir "$work/cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
eval "$("$KEYFRAG" dev up --dir "$work/cluster" 2>/dev/null)"
sed -i 's/^allow_raw_rsa = true$/allow_raw_rsa = false/' "$KEYFRAG_CONF"
# GnuTLS's tools read the token PIN from GNUTLS_PIN.
export GNUTLS_PIN=1234
plain() { OPENSSL_CONF=/dev/null openssl "$@"; }
p11tool() { command p11tool --provider "$MODULE" "$@"; }
passed=0
check() { echo "ok - $1"; passed=$((passed + 1)); }

token="pkcs11:token=keyfrag-dev"
key="$token;object=gnutls;type=private"
p11tool --list-tokens > "$work/tokens.txt"
grep -q "URL: pkcs11:model=keyfrag;manufacturer=keyfrag;serial=[0-9a-f]*;token=keyfrag-dev$" "$work/tokens.txt"
check "p11tool --list-tokens shows token keyfrag-dev"

p11tool --login --generate-privkey rsa --bits 2048 --label gnutls --id 0c01 \
  --outfile "$work/pub.pem" "$token" >/dev/null 2>&1
p11tool --login --list-all-privkeys "$token" > "$work/privkeys.txt"
grep -q "URL: .*id=%0C%01;object=gnutls;type=private$" "$work/privkeys.txt"
grep -q "Flags: CKA_PRIVATE; CKA_NEVER_EXTRACTABLE; CKA_SENSITIVE;" "$work/privkeys.txt"
check "p11tool --generate-privkey made an RSA-2048 pair on the token (never extractable)"

for sign in pkcs1:sha256WithRSAEncryption pss:rsassaPss; do
  IFS=: read -r sign expected <<<"$sign"
  params=()
  [ "$sign" = pss ] && params=(--sign-params RSA-PSS)
  certtool --provider "$MODULE" --generate-self-signed --load-privkey "$key" "${params[@]}" \
    --hash SHA256 --template "$here/template.cfg" --outfile "$work/cert.$sign.pem" >/dev/null 2>&1
  certtool --verify --load-ca-certificate "$work/cert.$sign.pem" --infile "$work/cert.$sign.pem" \
    2>&1 | grep -q "Chain verification output: Verified"
  plain verify -CAfile "$work/cert.$sign.pem" "$work/cert.$sign.pem" >/dev/null
  plain x509 -in "$work/cert.$sign.pem" -noout -pubkey | plain pkey -pubin -outform DER |
    cmp -s - <(plain pkey -pubin -in "$work/pub.pem" -outform DER)
  algorithm=$(plain x509 -in "$work/cert.$sign.pem" -noout -text |
    sed -n 's/^ *Signature Algorithm: \([A-Za-z0-9]*\).*$/\1/p' | head -1)
  [ "$algorithm" = "$expected" ]
  check "certtool --generate-self-signed with the token key ($algorithm), verified by certtool and openssl"
done

p11tool --login --write --load-certificate "$work/cert.pkcs1.pem" --label gnutls --id 0c01 \
  "$token" >/dev/null 2>&1
p11tool --login --list-all "$token" > "$work/all.txt"
for type in private public cert; do
  grep -q "URL: .*id=%0C%01;object=gnutls;type=$type$" "$work/all.txt"
done
check "p11tool --list-all: private key, public key and the stored certificate share CKA_ID 0c01"

# gnutls-serv cannot pick its own port: try random ones until it listens on one.
port=""
for _ in $(seq 20); do
  candidate=$((20000 + RANDOM % 40000))
  gnutls-serv --provider "$MODULE" --x509keyfile "$key" --x509certfile "$token;object=gnutls;type=cert" \
    --port "$candidate" --http >"$work/server.log" 2>&1 3>&- &
  server=$!
  for _ in $(seq 300); do
    grep -q "listening on IPv4 .* port $candidate\.\.\.done" "$work/server.log" && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  if grep -q "listening on IPv4 .* port $candidate\.\.\.done" "$work/server.log"; then
    port=$candidate
    break
  fi
  kill "$server" 2>/dev/null || true
  server=""
done
[ -n "$port" ] || { cat "$work/server.log"; false; }
for v in 1_2:RSA+SHA256:RSA 1_3:rsa_pss_rsae_sha256:RSA-PSS; do
  IFS=: read -r version sigalgs sigtype <<<"$v"
  printf 'GET / HTTP/1.0\r\n\r\n' | plain s_client -connect "127.0.0.1:$port" -servername localhost \
    -CAfile "$work/cert.pkcs1.pem" -verify_return_error -verify_hostname localhost "-tls$version" \
    -sigalgs "$sigalgs" -ign_eof >"$work/client.out" 2>&1
  grep -q "^New, TLSv${version/_/.}, Cipher is " "$work/client.out"
  grep -q "^Peer signature type: $sigtype$" "$work/client.out"
  grep -q "Verify return code: 0 (ok)" "$work/client.out"
  grep -q "^HTTP/1.0 200 OK" "$work/client.out"
  check "gnutls-serv with key and certificate from the token: TLS ${version/_/.} handshake verified by s_client, server signature $sigtype"
done

echo "$passed passed, 0 failed"
