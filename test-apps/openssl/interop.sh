#!/usr/bin/env bash
# OpenSSL 3 against keyfrag, through pkcs11-provider and through the libp11 engine: with an
# imported RSA-2048 key, `openssl pkeyutl` signs (PKCS#1 v1.5 and PSS, verified by plain
# OpenSSL) and decrypts (PKCS#1 v1.5 and OAEP ciphertexts made by plain OpenSSL), and
# `openssl req -x509` makes a self-signed certificate with the token key; the provider's
# certificate is stored on the token under the key's CKA_ID and read back by URI.
# Raw RSA is switched off for the token, so none of this relies on CKM_RSA_X_509.
# Runs against its own dev cluster.
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
cleanup() { "$KEYFRAG" dev down --dir "$work/cluster" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
eval "$("$KEYFRAG" dev up --dir "$work/cluster" 2>/dev/null)"
conf="$work/keyfrag.toml"
sed 's/^allow_raw_rsa = true$/allow_raw_rsa = false/' "$KEYFRAG_CONF" > "$conf"
# OpenSSL finds the module's configuration through the init arguments in its own config.
unset KEYFRAG_CONF
printf 1234 > "$work/pin"
render() {
  sed -e "s#@PROVIDER@#$PROVIDER#" -e "s#@ENGINE@#$ENGINE#" -e "s#@MODULE@#$MODULE#" \
    -e "s#@KEYFRAG_CONF@#$conf#" -e "s#@PIN_FILE@#$work/pin#" "$here/$1" > "$work/$1"
}
render provider.cnf
render engine.cnf
prov() { OPENSSL_CONF="$work/provider.cnf" openssl "$@"; }
eng() { OPENSSL_CONF="$work/engine.cnf" openssl "$@"; }
plain() { OPENSSL_CONF=/dev/null openssl "$@"; }
p11() { KEYFRAG_CONF="$conf" pkcs11-tool --module "$MODULE" --token-label keyfrag-dev --login --pin 1234 "$@"; }
passed=0
check() { echo "ok - $1"; passed=$((passed + 1)); }

plain genrsa -out "$work/key.pem" 2048 2>/dev/null
plain rsa -in "$work/key.pem" -outform DER -out "$work/key.der" 2>/dev/null
plain rsa -in "$work/key.pem" -pubout -out "$work/pub.pem" 2>/dev/null
plain rsa -in "$work/key.pem" -pubout -outform DER -out "$work/pub.der" 2>/dev/null
p11 --write-object "$work/key.der" --type privkey --id 0a01 --label ossl >/dev/null 2>&1
p11 --write-object "$work/pub.der" --type pubkey --id 0a01 --label ossl >/dev/null 2>&1
rm -f "$work/key.pem" "$work/key.der"
printf 'a message for the fragments\n' > "$work/msg"
plain pkeyutl -encrypt -pubin -inkey "$work/pub.pem" -in "$work/msg" -out "$work/ct.pkcs1"
plain pkeyutl -encrypt -pubin -inkey "$work/pub.pem" -pkeyopt rsa_padding_mode:oaep \
  -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in "$work/msg" -out "$work/ct.oaep"
pss=(-pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest)
oaep=(-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256)

# Signs, decrypts and self-certifies with key URI $2 through front end $1 (prov or eng),
# whose extra arguments for loading a key follow the URI.
exercise() {
  local via=$1 name=$2 key=$3
  shift 3
  "$via" pkeyutl -sign "$@" -inkey "$key" -rawin -digest sha256 -in "$work/msg" \
    -out "$work/sig.$via" 2>/dev/null
  plain dgst -sha256 -verify "$work/pub.pem" -signature "$work/sig.$via" "$work/msg" >/dev/null
  check "$name: pkeyutl -sign SHA-256 PKCS#1 v1.5, verified by openssl"

  "$via" pkeyutl -sign "$@" -inkey "$key" -rawin -digest sha256 "${pss[@]}" -in "$work/msg" \
    -out "$work/sig.$via.pss" 2>/dev/null
  plain pkeyutl -verify -pubin -inkey "$work/pub.pem" -rawin -digest sha256 "${pss[@]}" \
    -in "$work/msg" -sigfile "$work/sig.$via.pss" >/dev/null
  check "$name: pkeyutl -sign SHA-256 PSS, verified by openssl"

  "$via" pkeyutl -decrypt "$@" -inkey "$key" -in "$work/ct.pkcs1" -out "$work/pt.$via" 2>/dev/null
  cmp -s "$work/pt.$via" "$work/msg"
  check "$name: pkeyutl -decrypt of an openssl PKCS#1 v1.5 ciphertext"

  "$via" pkeyutl -decrypt "$@" -inkey "$key" "${oaep[@]}" -in "$work/ct.oaep" \
    -out "$work/pt.$via.oaep" 2>/dev/null
  cmp -s "$work/pt.$via.oaep" "$work/msg"
  check "$name: pkeyutl -decrypt of an openssl OAEP-SHA256 ciphertext"

  "$via" req -x509 -new "$@" -key "$key" -sha256 -days 30 -subj "/CN=keyfrag $name" \
    -addext basicConstraints=critical,CA:TRUE -out "$work/cert.$via.pem" 2>/dev/null
  plain verify -CAfile "$work/cert.$via.pem" "$work/cert.$via.pem" >/dev/null
  plain x509 -in "$work/cert.$via.pem" -noout -pubkey | plain pkey -pubin -outform DER |
    cmp -s - "$work/pub.der"
  check "$name: req -x509 self-signed certificate for the token key, verified by openssl"
}

exercise prov pkcs11-provider "pkcs11:token=keyfrag-dev;object=ossl;type=private"
exercise eng "libp11 engine" "pkcs11:token=keyfrag-dev;object=ossl;type=private;pin-value=1234" \
  -engine pkcs11 -keyform engine

# The certificate joins the key pair under CKA_ID 0a01; the provider finds all three by id.
plain x509 -in "$work/cert.prov.pem" -outform DER -out "$work/cert.der"
p11 --write-object "$work/cert.der" --type cert --id 0a01 --label ossl >/dev/null 2>&1
byid="pkcs11:token=keyfrag-dev;id=%0a%01"
prov storeutl -certs "$byid;type=cert" 2>/dev/null |
  sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' > "$work/stored.pem"
cmp -s <(plain x509 -in "$work/stored.pem" -outform DER) "$work/cert.der"
prov storeutl "$byid" 2>/dev/null | grep -E '^[0-9]+: ' | sed 's/^[0-9]*: //' | sort > "$work/byid"
printf 'Certificate\nPkey\nPublic key\n' | cmp -s - "$work/byid"
check "certificate stored on the token with CKA_ID 0a01: private key, public key and certificate found by that id"

echo "$passed passed, 0 failed"
