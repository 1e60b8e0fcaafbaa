#!/usr/bin/env bash
# Regenerates testdata/quote/*: real TPM 2.0 quotes from swtpm made with tpm2-tools.
# Usage: testdata/scripts/make-quotes.sh   (from anywhere; needs swtpm swtpm-tools tpm2-tools)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$HERE/../quote"
# shellcheck source=swtpm-env.sh
. "$HERE/swtpm-env.sh"
cd "$SWTPM_DIR"

flush() { tpm2_flushcontext -t >/dev/null; tpm2_flushcontext -s >/dev/null; }

# Give the PCRs recognisable, non-zero values: PCR i of every bank gets extended with
# H("trustpool fixture PCR i").
for i in 0 1 2 3 4 5 6 7 16; do
    for bank in sha1 sha256 sha384; do
        d=$(printf 'trustpool fixture PCR %s' "$i" | "${bank}sum" | cut -d' ' -f1)
        tpm2_pcrextend "$i:$bank=$d"
    done
done

# name  key-alg  hash  scheme  pcr-list
make_quote() {
    local name=$1 alg=$2 hash=$3 scheme=$4 list=$5 dir="$OUT/$1"
    rm -rf "$dir"; mkdir -p "$dir"
    tpm2_createek -c ek.ctx -G "$( [ "$alg" = rsa ] && echo rsa || echo ecc)" -u "$dir/ek.pub" >/dev/null; flush
    tpm2_createak -C ek.ctx -c ak.ctx -G "$alg" -g "$hash" -s "$scheme" -u "$dir/ak.pub" -n "$dir/ak.name" >/dev/null; flush
    tpm2_readpublic -c ak.ctx -f pem -o "$dir/ak.pem" >/dev/null; flush
    local nonce; nonce=$(head -c 32 /dev/urandom | xxd -p -c 64)
    printf '%s\n' "$nonce" > "$dir/nonce.hex"
    printf '%s\n' "$list" > "$dir/pcr-list.txt"
    tpm2_quote -c ak.ctx -l "$list" -q "$nonce" -g "$hash" --scheme "$scheme" \
        -m "$dir/quote.msg" -s "$dir/quote.sig" -o "$dir/quote.pcrs" >/dev/null; flush
    # The oracle: tpm2-tools itself must accept what it made. (tpm2-tools 5.4's
    # tpm2_checkquote cannot verify RSAPSS quotes: "Verify signature failed!". Our
    # verifier checks those; see testdata/README.md.)
    [ "$scheme" = rsapss ] || tpm2_checkquote -u "$dir/ak.pub" -m "$dir/quote.msg" -s "$dir/quote.sig" \
        -f "$dir/quote.pcrs" -g "$hash" -q "$nonce" >/dev/null
    rm -f ek.ctx ak.ctx
    echo "made $name"
}

make_quote rsa2048-sha256        rsa    sha256 rsassa "sha256:0,1,2,3,4,5,6,7,16"
make_quote rsa2048-pss-sha256    rsa    sha256 rsapss "sha256:0,7,16"
make_quote rsa2048-sha384        rsa    sha384 rsassa "sha384:0,1,2,3,4,5,6,7"
make_quote ecc-p256-sha256       ecc256 sha256 ecdsa  "sha256:0,1,2,3,4,5,6,7,16+sha384:0,16"
make_quote ecc-p384-sha384       ecc384 sha384 ecdsa  "sha384:0,1,2,3,4,5,6,7"
make_quote rsa2048-sha256-all    rsa    sha256 rsassa "sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23"

{
    echo "swtpm: $(swtpm --version 2>&1 | head -1)"
    echo "tpm2-tools: $(tpm2 --version 2>&1 | head -1)"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$OUT/VERSIONS"
