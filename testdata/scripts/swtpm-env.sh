# Sourced by the fixture scripts: start a private swtpm with an EK certificate from a
# private swtpm-localca, and stop it on exit. Sets TPM2TOOLS_TCTI, $SWTPM_DIR, $CA_DIR.
# Needs: swtpm swtpm-tools tpm2-tools (Debian).

SWTPM_DIR=$(mktemp -d /tmp/trustpool-swtpm.XXXXXX)
CA_DIR="$SWTPM_DIR/ca"
mkdir -p "$CA_DIR/state" "$SWTPM_DIR/state"

swtpm_env_cleanup() {
    if [ -n "${SWTPM_PID:-}" ]; then kill "$SWTPM_PID" 2>/dev/null || true; wait "$SWTPM_PID" 2>/dev/null || true; fi
    rm -rf "$SWTPM_DIR"
}
trap swtpm_env_cleanup EXIT

cat > "$CA_DIR/swtpm-localca.conf" <<CONF
statedir = $CA_DIR/state
signingkey = $CA_DIR/state/signkey.pem
issuercert = $CA_DIR/state/issuercert.pem
certserial = $CA_DIR/state/certserial
CONF
printf '%s\n' '--platform-manufacturer trustpool' '--platform-version 2.1' '--platform-model swtpm' > "$CA_DIR/swtpm-localca.options"
cat > "$CA_DIR/swtpm_setup.conf" <<CONF
create_certs_tool = $(command -v swtpm_localca)
create_certs_tool_config = $CA_DIR/swtpm-localca.conf
create_certs_tool_options = $CA_DIR/swtpm-localca.options
active_pcr_banks = ${ACTIVE_PCR_BANKS:-sha1,sha256,sha384}
CONF
swtpm_setup --tpm2 --tpmstate "$SWTPM_DIR/state" --config "$CA_DIR/swtpm_setup.conf" \
    --create-ek-cert --lock-nvram --overwrite >/dev/null
swtpm socket --tpm2 --tpmstate dir="$SWTPM_DIR/state" \
    --server type=unixio,path="$SWTPM_DIR/tpm.sock" --ctrl type=unixio,path="$SWTPM_DIR/tpm.sock.ctrl" \
    --flags not-need-init,startup-clear 2>/dev/null &
SWTPM_PID=$!
for _ in $(seq 50); do [ -S "$SWTPM_DIR/tpm.sock" ] && break; sleep 0.1; done
export TPM2TOOLS_TCTI="swtpm:path=$SWTPM_DIR/tpm.sock"
