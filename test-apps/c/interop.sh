#!/usr/bin/env bash
# A C application (test-apps/c/sign_fork.c) against keyfrag, including fork: builds it,
# imports a key with pkcs11-tool into its own dev cluster, and runs it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
MODULE="${KEYFRAG_MODULE:-$root/target/debug/libkeyfrag_pkcs11.so}"
KEYFRAG="${KEYFRAG_BIN:-$root/target/debug/keyfrag}"
work=$(mktemp -d)
cleanup() { "$KEYFRAG" dev down --dir "$work/cluster" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

cc -Wall -Wextra -Werror -O1 -I/usr/include/p11-kit-1 -o "$work/sign_fork" "$here/sign_fork.c" -ldl
eval "$("$KEYFRAG" dev up --dir "$work/cluster" 2>/dev/null)"
p11() { pkcs11-tool --module "$MODULE" --login --pin 1234 "$@" >/dev/null 2>&1; }
openssl genrsa -out "$work/key.pem" 2048 2>/dev/null
openssl rsa -in "$work/key.pem" -outform DER -out "$work/key.der" 2>/dev/null
openssl rsa -in "$work/key.pem" -pubout -outform DER -out "$work/pub.der" 2>/dev/null
p11 --write-object "$work/key.der" --type privkey --id c0 --label from-c
p11 --write-object "$work/pub.der" --type pubkey --id c0 --label from-c
"$work/sign_fork" "$MODULE" 1234 from-c
