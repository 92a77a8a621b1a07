#!/usr/bin/env bash
# No secret in any log (issue 8, item 8): a dev cluster with a customer fragment, every
# component logging at trace level, and pkcs11-tool driving logins, an import, signatures, a
# decryption, a PIN change, and AES (CBC-PAD) and HMAC with keys on the cells' PRF. Then every log — the three cells' and the module's — is
# searched for the PINs, the recovery secret, and the imported key's private exponent and
# primes (hex in both cases, and base64), and the AES plaintext. Any hit fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
MODULE="${KEYFRAG_MODULE:-$root/target/debug/libkeyfrag_pkcs11.so}"
KEYFRAG="${KEYFRAG_BIN:-$root/target/debug/keyfrag}"
for tool in pkcs11-tool openssl grep base64; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
work=$(mktemp -d)
cleanup() { "$KEYFRAG" dev down --dir "$work/cluster" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

user_pin="kfUserPin-7319"
new_pin="kfNewPin-4826"
so_pin="kfSoPin-55120"
export KEYFRAG_LOG=trace
eval "$("$KEYFRAG" dev up --dir "$work/cluster" --user-pin "$user_pin" --so-pin "$so_pin" \
  --customer-fragment 2>"$work/dev-up.log")"
module_log="$work/module.log"
p11() { pkcs11-tool --module "$MODULE" --token-label keyfrag-dev --login "$@" 2>>"$module_log"; }

openssl genrsa -out "$work/key.pem" 2048 2>/dev/null
openssl rsa -in "$work/key.pem" -outform DER -out "$work/key.der" 2>/dev/null
openssl rsa -in "$work/key.pem" -pubout -out "$work/pub.pem" 2>/dev/null
p11 --pin "$user_pin" --write-object "$work/key.der" --type privkey --id 5e --label secrets >/dev/null
printf 'a message\n' > "$work/msg"
p11 --pin "$user_pin" --sign --mechanism SHA256-RSA-PKCS --id 5e -i "$work/msg" -o "$work/sig" >/dev/null
openssl dgst -sha256 -verify "$work/pub.pem" -signature "$work/sig" "$work/msg" >/dev/null
openssl pkeyutl -encrypt -pubin -inkey "$work/pub.pem" -in "$work/msg" -out "$work/ct"
p11 --pin "$user_pin" --decrypt --mechanism RSA-PKCS --id 5e -i "$work/ct" -o "$work/pt" >/dev/null
cmp -s "$work/pt" "$work/msg"
p11 --pin "$user_pin" --change-pin --new-pin "$new_pin" >/dev/null
p11 --pin "$new_pin" --sign --mechanism SHA256-RSA-PKCS --id 5e -i "$work/msg" -o "$work/sig2" >/dev/null
openssl dgst -sha256 -verify "$work/pub.pem" -signature "$work/sig2" "$work/msg" >/dev/null
# Secret keys: an AES key and an HMAC key on the cells' PRF; their plaintext is a needle.
aes_plain="kfAesPlaintext-90417-not-for-logs"
printf '%s' "$aes_plain" > "$work/aes-msg"
p11 --pin "$new_pin" --keygen --key-type AES:32 --sensitive --id 5f >/dev/null
p11 --pin "$new_pin" --encrypt -m AES-CBC-PAD --iv 000102030405060708090a0b0c0d0e0f --id 5f \
  -i "$work/aes-msg" -o "$work/aes-ct" >/dev/null
p11 --pin "$new_pin" --decrypt -m AES-CBC-PAD --iv 000102030405060708090a0b0c0d0e0f --id 5f \
  -i "$work/aes-ct" -o "$work/aes-pt" >/dev/null
cmp -s "$work/aes-pt" "$work/aes-msg"
p11 --pin "$new_pin" --keygen --key-type GENERIC:32 --sensitive --id 60 >/dev/null
p11 --pin "$new_pin" --sign -m SHA256-HMAC --id 60 -i "$work/aes-msg" -o "$work/mac" >/dev/null
p11 --pin "wrong-$user_pin" --list-objects >/dev/null 2>&1 || true
echo "ok - logins, import, signatures, decryption, a PIN change and AES/HMAC keys ran at trace level"

logs=("$module_log" "$work"/cluster/cells/*/cell.log)
lines=$(cat "${logs[@]}" | wc -l)
[ "$lines" -gt 100 ] || { echo "only $lines log lines: is trace logging on?" >&2; exit 1; }

# The key's private numbers as the text OpenSSL prints, hex without separators, and base64
# of their big-endian bytes (a JSON body would carry that).
numbers() {
  openssl rsa -in "$work/key.pem" -noout -text 2>/dev/null | awk -v want="$1" '
    /^[a-zA-Z]/ { cur = $1; next }
    cur == want { gsub(/[ :]/, ""); printf "%s", $0 }' | sed 's/^00//'
}
needles=("$user_pin" "$new_pin" "$so_pin" "$(tr -d '\n' < "$work/cluster/customer.recovery")")
for part in privateExponent: prime1: prime2:; do
  hex=$(numbers "$part")
  [ ${#hex} -gt 200 ] || { echo "could not read $part" >&2; exit 1; }
  needles+=("${hex:0:48}" "$(echo "${hex:0:48}" | tr a-f A-F)")
  needles+=("$(printf "$(echo "$hex" | sed 's/../\\x&/g')" | base64 -w0 | cut -c1-40)")
done
needles+=("$aes_plain" "$(printf '%s' "$aes_plain" | od -An -v -tx1 | tr -d ' \n' | cut -c1-40)")
# The search itself works: `dev up` prints the dev PINs on purpose (its own stderr, not a log),
# and the hex needle is found in OpenSSL's own dump of the key.
grep -F -q -- "$user_pin" "$work/dev-up.log"
openssl rsa -in "$work/key.pem" -noout -text 2>/dev/null | tr -d ' :\n' | grep -F -q -- "${needles[4]}"
found=0
for n in "${needles[@]}"; do
  if grep -F -q -- "$n" "${logs[@]}"; then
    echo "SECRET FOUND in logs: ${n:0:6}… ($(grep -F -l -- "$n" "${logs[@]}" | tr '\n' ' '))" >&2
    found=1
  fi
done
[ "$found" -eq 0 ]
echo "ok - none of ${#needles[@]} secret strings in $lines log lines (module and 3 cells)"
echo "2 passed, 0 failed"
