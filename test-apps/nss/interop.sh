#!/usr/bin/env bash
# NSS against keyfrag: `modutil -add` registers the module in a fresh certificate database
# (the configuration path travels as the module's parameter string, which NSS hands to
# C_Initialize); `certutil -K/-L` list an imported OpenSSL key and its certificate;
# `certutil -S` generates an RSA-2048 key on the token (by the cells) and stores a
# self-signed certificate for it on the token under the key's CKA_ID; `certutil -V`
# validates it, plain OpenSSL verifies it, and NSS's `selfserv` serves TLS 1.2 and 1.3 with
# it to `openssl s_client`. Raw RSA is switched off for the token. Runs against its own
# dev cluster.
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

for tool in certutil modutil selfserv openssl pkcs11-tool; do
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
conf="$work/keyfrag.toml"
sed 's/^allow_raw_rsa = true$/allow_raw_rsa = false/' "$KEYFRAG_CONF" > "$conf"
# NSS finds the configuration through the module's parameter string alone.
unset KEYFRAG_CONF
printf 1234 > "$work/pin"
db="sql:$work/nssdb"
plain() { OPENSSL_CONF=/dev/null openssl "$@"; }
p11() { KEYFRAG_CONF="$conf" pkcs11-tool --module "$MODULE" --token-label keyfrag-dev --login --pin 1234 "$@"; }
passed=0
check() { echo "ok - $1"; passed=$((passed + 1)); }

# An OpenSSL key pair and certificate, imported with pkcs11-tool, for NSS to find.
plain req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -subj "/CN=keyfrag imported" \
  -days 30 -out "$work/imported.pem" 2>/dev/null
plain rsa -in "$work/key.pem" -outform DER -out "$work/key.der" 2>/dev/null
plain x509 -in "$work/imported.pem" -outform DER -out "$work/imported.der"
p11 --write-object "$work/key.der" --type privkey --id 0a01 --label imported >/dev/null 2>&1
p11 --write-object "$work/imported.der" --type cert --id 0a01 --label imported >/dev/null 2>&1
rm -f "$work/key.pem" "$work/key.der"

mkdir "$work/nssdb"
certutil -N -d "$db" --empty-password
# FRIENDLY: the token's certificates are public, so NSS finds them without logging in.
modutil -dbdir "$db" -add keyfrag -libfile "$MODULE" -string "config=$conf" \
  -mechanisms FRIENDLY -force >/dev/null
modutil -dbdir "$db" -list keyfrag </dev/null > "$work/modutil.txt"
grep -qE "^ *Token Name: keyfrag-dev *$" "$work/modutil.txt"
grep -q "PKCS #11 Version 3.0" "$work/modutil.txt"
grep -q "User Pin: Initialized" "$work/modutil.txt"
check "modutil -add loaded the module (PKCS#11 3.0) with parameters config=…: token keyfrag-dev"

certutil -K -d "$db" -h keyfrag-dev -f "$work/pin" > "$work/keys.txt"
grep -qE "^<[ 0-9]+> rsa +0a01 +imported$" "$work/keys.txt"
certutil -L -d "$db" -h keyfrag-dev -f "$work/pin" > "$work/certs.txt"
grep -qE "^keyfrag-dev:imported " "$work/certs.txt"
check "certutil -K / -L list the imported RSA key (CKA_ID 0a01) and its certificate"

head -c 2048 /dev/urandom > "$work/noise"
certutil -S -d "$db" -h keyfrag-dev -f "$work/pin" -n nss -s CN=localhost -8 localhost -x \
  -t CTu,Cu,Cu -k rsa -g 2048 -Z SHA256 -v 12 -z "$work/noise" >/dev/null 2>&1
certutil -K -d "$db" -h keyfrag-dev -f "$work/pin" | grep -qE "^<[ 0-9]+> rsa +[0-9a-f]{40} +keyfrag-dev:nss$"
certutil -L -d "$db" -h keyfrag-dev -f "$work/pin" | grep -qE "^keyfrag-dev:nss +CTu,Cu,Cu$"
check "certutil -S generated an RSA-2048 key on the token and stored its self-signed certificate there"

certutil -V -d "$db" -n keyfrag-dev:nss -u V -f "$work/pin" </dev/null | grep -q "certificate is valid"
certutil -V -d "$db" -n keyfrag-dev:nss -u C -f "$work/pin" </dev/null | grep -q "certificate is valid"
check "certutil -V: the certificate is valid for SSL server and client use"

certutil -L -d "$db" -n keyfrag-dev:nss -a > "$work/nss.pem"
plain verify -CAfile "$work/nss.pem" "$work/nss.pem" >/dev/null
# The token holds the certificate and the key pair under one CKA_ID, and the private key was
# born there: local, never extractable.
p11 --list-objects 2>/dev/null > "$work/objects.txt"
id=$(awk '/^Certificate Object/ {c=1} c && /label: *nss$/ {l=1} c && l && /ID:/ {print $2; exit}' "$work/objects.txt")
[ ${#id} -eq 40 ]
p11 --list-objects --type privkey --id "$id" 2>/dev/null | grep -q "never extractable, local"
p11 --read-object --type pubkey --id "$id" -o "$work/nss.pub.der" >/dev/null 2>&1
plain x509 -in "$work/nss.pem" -noout -pubkey | plain pkey -pubin -outform DER | cmp -s - "$work/nss.pub.der"
check "openssl verifies the NSS certificate; certificate, public and private key share CKA_ID $id"

# selfserv cannot pick its own port: try random ones until it listens on one.
port=""
for _ in $(seq 20); do
  candidate=$((20000 + RANDOM % 40000))
  selfserv -d "$db" -p "$candidate" -n keyfrag-dev:nss -f "$work/pin" -V tls1.2:tls1.3 -v \
    >"$work/selfserv.log" 2>&1 3>&- &
  server=$!
  for _ in $(seq 300); do
    grep -q "About to call accept" "$work/selfserv.log" && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  if grep -q "About to call accept" "$work/selfserv.log"; then
    port=$candidate
    break
  fi
  kill "$server" 2>/dev/null || true
  server=""
done
[ -n "$port" ] || { cat "$work/selfserv.log"; false; }
for v in 1_2:RSA+SHA256:RSA 1_3:rsa_pss_rsae_sha256:RSA-PSS; do
  IFS=: read -r version sigalgs sigtype <<<"$v"
  plain s_client -connect "127.0.0.1:$port" -servername localhost -CAfile "$work/nss.pem" \
    -verify_return_error -verify_hostname localhost "-tls$version" -sigalgs "$sigalgs" \
    </dev/null >"$work/client.out" 2>&1
  grep -q "^New, TLSv${version/_/.}, Cipher is " "$work/client.out"
  grep -q "^Peer signature type: $sigtype$" "$work/client.out"
  grep -q "Verify return code: 0 (ok)" "$work/client.out"
  check "selfserv (NSS) with the token key: TLS ${version/_/.} handshake verified by s_client, server signature $sigtype"
done

echo "$passed passed, 0 failed"
