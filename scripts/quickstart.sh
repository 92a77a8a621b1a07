#!/usr/bin/env bash
# The main job: a local 3-cell cluster, an RSA key held only as fragments, a signature made
# through the PKCS#11 module with pkcs11-tool and checked by OpenSSL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --workspace --bins --lib
export PATH="$PWD/target/debug:$PATH"
MODULE="$PWD/target/debug/libkeyfrag_pkcs11.so"
DIR="${KEYFRAG_DEV_DIR:-$PWD/target/quickstart}"

eval "$(keyfrag dev up --dir "$DIR")"
echo "cluster up; KEYFRAG_CONF=$KEYFRAG_CONF"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
p11() { pkcs11-tool --module "$MODULE" --token-label keyfrag-dev --login --pin 1234 "$@"; }

id=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
openssl genrsa -out "$work/key.pem" 2048 2>/dev/null
openssl rsa -in "$work/key.pem" -outform DER -out "$work/key.der" 2>/dev/null
openssl rsa -in "$work/key.pem" -pubout -out "$work/pub.pem" 2>/dev/null
openssl rsa -in "$work/key.pem" -pubout -outform DER -out "$work/pub.der" 2>/dev/null
# The whole key exists only here, on import; the module splits it into fragments.
p11 --write-object "$work/key.der" --type privkey --id "$id" --label "quickstart-$id" >/dev/null
p11 --write-object "$work/pub.der" --type pubkey --id "$id" --label "quickstart-$id" >/dev/null
rm -f "$work/key.pem" "$work/key.der"

echo "keyfrag signs a message by fragments" > "$work/msg"
p11 --sign --mechanism SHA256-RSA-PKCS --id "$id" -i "$work/msg" -o "$work/sig" 2>/dev/null
openssl dgst -sha256 -verify "$work/pub.pem" -signature "$work/sig" "$work/msg"
echo
echo "keys on the cells:"
keyfrag keys list
echo
echo "done: a signature made by three fragment cells verified with OpenSSL."
echo "stop the cluster with: keyfrag dev down --dir $DIR"
