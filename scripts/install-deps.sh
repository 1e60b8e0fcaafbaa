#!/usr/bin/env bash
# Installs the Debian packages trustpool's build and tests need, when missing.
# Idempotent and quiet when everything is there. Run as root (or with sudo available).
#
#   swtpm swtpm-tools   software TPM 2.0 and its provisioning (EK certificates)
#   tpm2-tools          tpm2_createek/createak/quote/checkquote/… (fixtures and oracles)
#   libtss2-dev         libtss2 (tss-esapi in the agent)
#   pkg-config          finds libtss2 at build time
#   xxd                 used by the fixture scripts
#   postgresql          a throwaway server for the PostgreSQL store tests (scripts/with-postgres.sh)
# With TESTS=1 (make test) also:
#   chromium            headless, for the dashboard's browser test
# With FIXTURES=1 also what regenerating the OVMF boot fixture needs:
#   qemu-system-x86 ovmf
set -euo pipefail

packages=(swtpm swtpm-tools tpm2-tools libtss2-dev pkg-config xxd postgresql curl)
if [ "${TESTS:-0}" = 1 ]; then packages+=(chromium); fi
if [ "${FIXTURES:-0}" = 1 ]; then packages+=(qemu-system-x86 ovmf); fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
echo "installing: ${missing[*]}" >&2
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
