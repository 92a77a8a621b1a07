#!/usr/bin/env bash
# pkcs11-tool and OpenSSL against keyfrag: import an OpenSSL RSA-2048 key, sign with
# SHA256-RSA-PKCS and RSA-PKCS-PSS (OpenSSL verifies both), decrypt an OAEP-SHA256
# ciphertext made by OpenSSL. Runs against its own dev cluster in a temp dir.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
MODULE="${KEYFRAG_MODULE:-$root/target/debug/libkeyfrag_pkcs11.so}"
KEYFRAG="${KEYFRAG_BIN:-$root/target/debug/keyfrag}"
work=$(mktemp -d)
cleanup() { "$KEYFRAG" dev down --dir "$work/cluster" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

eval "$("$KEYFRAG" dev up --dir "$work/cluster" 2>/dev/null)"
p11() { pkcs11-tool --module "$MODULE" --token-label keyfrag-dev --login --pin 1234 "$@"; }
passed=0
check() { echo "ok - $1"; passed=$((passed + 1)); }

openssl genrsa -out "$work/key.pem" 2048 2>/dev/null
openssl rsa -in "$work/key.pem" -outform DER -out "$work/key.der" 2>/dev/null
openssl rsa -in "$work/key.pem" -pubout -out "$work/pub.pem" 2>/dev/null
openssl rsa -in "$work/key.pem" -pubout -outform DER -out "$work/pub.der" 2>/dev/null
p11 --write-object "$work/key.der" --type privkey --id 0a01 --label interop >/dev/null 2>&1
p11 --write-object "$work/pub.der" --type pubkey --id 0a01 --label interop >/dev/null 2>&1
check "pkcs11-tool imports an OpenSSL RSA-2048 key"

p11 --list-objects --type privkey 2>/dev/null | grep -q "label: *interop"
check "the imported private key is listed"

printf 'a message for the fragments\n' > "$work/msg"
p11 --sign --mechanism SHA256-RSA-PKCS --id 0a01 -i "$work/msg" -o "$work/sig.pkcs" 2>/dev/null
openssl dgst -sha256 -verify "$work/pub.pem" -signature "$work/sig.pkcs" "$work/msg" >/dev/null
check "SHA256-RSA-PKCS signature verified by openssl"

p11 --sign --mechanism SHA256-RSA-PKCS-PSS --id 0a01 -i "$work/msg" -o "$work/sig.pss" 2>/dev/null
openssl dgst -sha256 -verify "$work/pub.pem" -sigopt rsa_padding_mode:pss \
  -sigopt rsa_pss_saltlen:32 -signature "$work/sig.pss" "$work/msg" >/dev/null
check "SHA256-RSA-PKCS-PSS signature verified by openssl"

openssl pkeyutl -encrypt -pubin -inkey "$work/pub.pem" -pkeyopt rsa_padding_mode:oaep \
  -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in "$work/msg" -out "$work/ct"
p11 --decrypt --mechanism RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 --id 0a01 \
  -i "$work/ct" -o "$work/pt" 2>/dev/null
cmp -s "$work/pt" "$work/msg"
check "OAEP-SHA256 ciphertext from openssl decrypted by pkcs11-tool"

echo "$passed passed, 0 failed"
