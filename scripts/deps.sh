#!/usr/bin/env bash
# Installs the Debian packages keyfrag's quickstart and tests use (idempotent; needs root or sudo).
# pkcs11-provider 1.0 exists for Debian 12 only in bookworm-backports, so that suite is added
# (pinned at its default low priority: nothing else is upgraded from it).
set -euo pipefail
packages=(opensc openssl softhsm2 ca-certificates gcc libc6-dev libp11-kit-dev libssl-dev pkg-config
  libengine-pkcs11-openssl libnss3-tools gnutls-bin openjdk-17-jdk-headless)
backports=(pkcs11-provider)
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
missing_bpo=()
for p in "${backports[@]}"; do installed "$p" || missing_bpo+=("$p"); done
[ ${#missing[@]} -eq 0 ] && [ ${#missing_bpo[@]} -eq 0 ] && exit 0

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [ ${#missing_bpo[@]} -gt 0 ] && [ "$codename" = bookworm ] &&
  ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "deb http://deb.debian.org/debian bookworm-backports main" |
    $sudo_cmd tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
fi
echo "installing: ${missing[*]} ${missing_bpo[*]}"
$sudo_cmd apt-get update -qq
export DEBIAN_FRONTEND=noninteractive
[ ${#missing[@]} -gt 0 ] && $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
if [ ${#missing_bpo[@]} -gt 0 ]; then
  if [ "$codename" = bookworm ]; then
    $sudo_cmd apt-get install -y -qq -t bookworm-backports "${missing_bpo[@]}" >/dev/null
  else
    $sudo_cmd apt-get install -y -qq "${missing_bpo[@]}" >/dev/null
  fi
fi
