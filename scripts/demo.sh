#!/usr/bin/env bash
# The seed's workflow on a local trusted compute pool, told as a short story with the real
# commands. `make demo` builds first and runs this. In a terminal the pool stays up after
# the story until Ctrl-C; otherwise (a script, CI) it is stopped and the exit status says
# whether every step happened as told.
set -euo pipefail

BIN=${TRUSTPOOL_BIN_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target/debug}
DIR=${TRUSTPOOL_DEMO_DIR:-$(cd "$(dirname "$0")/.." && pwd)/.demo}
HOSTS=4
export PATH="$BIN:$PATH"

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
say() { printf '%s\n' "$*"; }
# Shows a command as the user would type it, runs it, keeps its output in $OUT.
run() {
    printf '\n\033[36m$ %s\033[0m\n' "$*"
    OUT=$("$@" 2>&1) || { printf '%s\n' "$OUT"; fail "'$*' failed"; }
    printf '%s\n' "$OUT"
}
fail() {
    printf '\n\033[31mdemo: %s — the story did not happen as told\033[0m\n' "$*" >&2
    trustpool dev down --dir "$DIR" >/dev/null 2>&1 || true
    exit 1
}
expect() { grep -qE -- "$1" <<<"$OUT" || fail "expected /$1/ in the output above"; }
host_of() { trustpool show "$1" -o json | sed -n 's/.*"OS-EXT-SRV-ATTR:host": "\([^"]*\)".*/\1/p'; }

bold "1. A trusted compute pool on this machine: an attestation server, a scheduler, and $HOSTS compute hosts"
say "   each with its own software TPM; compute-$HOSTS boots a BIOS whose digest is not the known-good one."
run trustpool dev up --hosts "$HOSTS" --tampered 1 --dir "$DIR" --detach
# shellcheck disable=SC1091
source "$DIR/env"

bold "2. The attestation server has challenged every host for a TPM quote of its measured boot"
say "   and appraised it against the golden policy (imported from compute-1)."
run trustpool host-list
expect "compute-1 +trusted"
expect "compute-$HOSTS +untrusted .*PCR 0 \(sha256\) differs from the policy: expected [0-9a-f]{64}, got [0-9a-f]{64}"
say "   Its evidence next to the policy, and the event log that replays to the quoted PCRs:"
run trustpool host-evidence "compute-$HOSTS"
expect "policy golden@1: does NOT match"
expect "BIOS +sha256 +0 +value .* ✗"
expect "EV_S_CRTM_VERSION|EV_POST_CODE|EV_EFI_PLATFORM_FIRMWARE_BLOB"

say "   Every host could enroll only because the administrator gave its name out first: \`dev up\` ran"
say "   host-add for each and wrote the single-use token where its agent reads it. A fifth host:"
run trustpool host-add "compute-$((HOSTS + 1))" --alias "compute-$((HOSTS + 1)).pool.test"
expect "token: +[0-9a-f]{64}"
say "   Without it, or under another host's name, a TPM is refused; one TPM has one name."

bold "3. The administrator marks a flavor trusted — the seed's own commands"
run trustpool flavor-create m1.tiny 1 512 1 1
run trustpool flavor-key m1.tiny set trust:trusted_host trusted
run trustpool flavor-show m1.tiny
expect '"trust:trusted_host":"trusted"'

bold "4. Users boot with it: every instance lands on a host the attestation server vouches for"
for i in 1 2 3 4; do
    run trustpool boot --flavor m1.tiny --image cirros --wait "trusted-$i"
    expect "status +\| ACTIVE"
    [ "$(host_of "trusted-$i")" != "compute-$HOSTS" ] || fail "trusted-$i landed on the tampered host"
done
run trustpool hypervisor-list
expect "compute-$HOSTS +\| up +\| enabled \| untrusted"

bold "5. A plain flavor asks for nothing: TrustedFilter lets it land anywhere (here: the emptiest host)"
run trustpool flavor-create m1.plain 2 512 1 1
run trustpool boot --flavor m1.plain --image cirros --wait plain-1
expect "OS-EXT-SRV-ATTR:host +\| compute-"

VICTIM_VM=trusted-1
VICTIM=$(host_of "$VICTIM_VM")
bold "6. $VICTIM, running $VICTIM_VM, is tampered live: its BIOS changes and it reboots"
run trustpool dev tamper "$VICTIM" --dir "$DIR"
say "   … waiting for the next attestation (every 3 s) to reach the scheduler"
for _ in $(seq 1 60); do
    trustpool hypervisor-show "$VICTIM" -o json | grep -q '"trust_level": "untrusted"' && break
    sleep 1
done
run trustpool hypervisor-list
expect "$VICTIM +\| up +\| enabled \| untrusted"
say "   Its running trusted instance is flagged for the operator to evacuate:"
run trustpool show "$VICTIM_VM"
expect "trust_alert +\| host untrusted since .*PCR 0"
run trustpool list
expect "$VICTIM_VM .*host untrusted"

bold "7. New trusted instances avoid it"
run trustpool boot --flavor m1.tiny --image cirros --wait trusted-5
[ "$(host_of trusted-5)" != "$VICTIM" ] && [ "$(host_of trusted-5)" != "compute-$HOSTS" ] \
    || fail "trusted-5 landed on an untrusted host"
expect "status +\| ACTIVE"

bold "8. The same through the APIs: Nova's compute API, and OAT PollHosts exactly as Nova's TrustedFilter calls it"
run curl -sS --cacert "$DIR/ca.crt" -H "X-Auth-Token: $TRUSTPOOL_TOKEN" "$TRUSTPOOL_COMPUTE_URL/v2.1/os-hypervisors/detail"
expect '"trust_level":"untrusted"'
run curl -sS --cacert "$DIR/ca.crt" -H 'content-type: application/json' -H 'x-auth-blob: i-am-openstack' \
    -d '{"count": 1, "hosts": ["compute-1"]}' "$TRUSTPOOL_ATTESTATION_URL/AttestationService/resources/PollHosts"
expect '"host_name":"compute-1","trust_lvl":"(trusted|untrusted)","vtime":"[0-9T:-]+Z"'
OUT=$(curl -sS --cacert "$DIR/ca.crt" -u ":$(cat "$DIR/read.token")" "$TRUSTPOOL_ATTESTATION_URL/dashboard")
expect "id=\"count-untrusted\">2 untrusted"

bold "Done. What you have:"
say "   dashboard            $TRUSTPOOL_ATTESTATION_URL/dashboard   (any user name; password: $(cat "$DIR/read.token"))"
say "   attestation server   $TRUSTPOOL_ATTESTATION_URL   (OAT PollHosts at /AttestationService/resources/PollHosts, v1 API at /v1)"
say "   compute API          $TRUSTPOOL_COMPUTE_URL/v2.1"
say "   for the CLI:         source $DIR/env      for Nova: $DIR/nova.conf"
say "   logs:                $DIR/logs/"

if [ -t 0 ] && [ -t 1 ]; then
    say ""
    say "The pool stays up: explore it (source $DIR/env; trustpool --help). Ctrl-C stops everything."
    trap 'printf "\nstopping …\n"; trustpool dev down --dir "$DIR"; exit 0' INT TERM
    while true; do sleep 3600; done
fi
trustpool dev down --dir "$DIR"
say "demo: every step happened as told."
