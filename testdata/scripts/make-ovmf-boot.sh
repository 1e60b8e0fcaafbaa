#!/usr/bin/env bash
# Regenerates testdata/eventlog/ovmf-qemu/: a real UEFI measured boot. OVMF boots a Debian
# kernel under qemu (TCG, no KVM) with an swtpm vTPM (banks sha1, sha256, sha384); the
# guest's initramfs dumps the firmware event log, every PCR of every bank, and a quote
# made with tpm2-tools inside the guest against /dev/tpmrm0.
# Needs: qemu-system-x86 ovmf swtpm swtpm-tools tpm2-tools busybox-static (downloaded)
# and a Debian linux-image package (downloaded with apt-get download). ~30-60 s.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$HERE/../eventlog/ovmf-qemu"
W=$(mktemp -d /tmp/trustpool-ovmf.XXXXXX)
cleanup() { [ -n "${SWTPM_PID:-}" ] && kill "$SWTPM_PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
cd "$W"

apt-get download busybox-static "$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6/{print $2; exit}')" >/dev/null 2>&1
dpkg-deb -x busybox-static_*.deb bb
dpkg-deb -x linux-image-6*.deb k
KERNEL=$(ls k/boot/vmlinuz-*)

mkdir -p rootfs/bin rootfs/usr/bin rootfs/proc rootfs/sys rootfs/dev rootfs/tmp
cp bb/bin/busybox rootfs/bin/
TPM2=$(command -v tpm2)
cp "$TPM2" rootfs/usr/bin/
for l in $(ldd "$TPM2" | grep -o '/[^ ]*'); do mkdir -p "rootfs$(dirname "$l")"; cp -L "$l" "rootfs$l"; done
TL=$(dpkg -L libtss2-tcti-device0 | grep 'tcti-device.so.0$')
mkdir -p "rootfs$(dirname "$TL")"; cp -L "$TL" "rootfs$TL"
for l in $(ldd "$TL" | grep -o '/[^ ]*'); do mkdir -p "rootfs$(dirname "$l")"; cp -L "$l" "rootfs$l"; done
for t in createek createak quote readpublic flushcontext; do ln -sf tpm2 "rootfs/usr/bin/tpm2_$t"; done

NONCE=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
LIST="sha256:0,1,2,3,4,5,6,7,8,9+sha384:0,1,2,3,4,5,6,7,8,9"
cat > rootfs/init <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin; export PATH=/bin:/usr/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
mount -t securityfs securityfs /sys/kernel/security
dump() { echo "===BEGIN \$1==="; base64 "\$2"; echo "===END \$1==="; }
dump eventlog /sys/kernel/security/tpm0/binary_bios_measurements
for b in sha1 sha256 sha384; do for i in \$(seq 0 23); do echo "PCR \$b \$i \$(cat /sys/class/tpm/tpm0/pcr-\$b/\$i)"; done; done
export TPM2TOOLS_TCTI=device:/dev/tpmrm0; cd /tmp
tpm2_createek -c ek.ctx -G rsa -u ek.pub >/dev/null && tpm2_createak -C ek.ctx -c ak.ctx -G rsa -g sha256 -s rsassa \
  -u ak.pub -n ak.name >/dev/null && tpm2_quote -c ak.ctx -l $LIST \
  -q $NONCE -m quote.msg -s quote.sig -o quote.pcrs -g sha256 >/dev/null && echo QUOTE_OK
for f in ak.pub ak.name quote.msg quote.sig quote.pcrs; do dump \$f \$f; done
poweroff -f
INIT
chmod +x rootfs/init
(cd rootfs && find . | ../bb/bin/busybox cpio -o -H newc 2>/dev/null) | gzip -1 > initrd.gz

mkdir -p vtpm ca/state
cat > ca/swtpm_setup.conf <<CONF
active_pcr_banks = sha1,sha256,sha384
CONF
swtpm_setup --tpm2 --tpmstate "$W/vtpm" --config "$W/ca/swtpm_setup.conf" --create-ek-cert --overwrite \
    --create-certs-tool /bin/true >/dev/null 2>&1 || swtpm_setup --tpm2 --tpmstate "$W/vtpm" --config "$W/ca/swtpm_setup.conf" --overwrite >/dev/null
swtpm socket --tpm2 --tpmstate dir="$W/vtpm" --ctrl type=unixio,path="$W/vtpm/sock" --terminate 2>/dev/null &
SWTPM_PID=$!
for _ in $(seq 50); do [ -S "$W/vtpm/sock" ] && break; sleep 0.1; done
cp "$(dpkg -L ovmf | grep 'OVMF_VARS_4M.fd$')" vars.fd
timeout 600 qemu-system-x86_64 -accel tcg -machine q35 -m 1024 -smp 1 -nographic -no-reboot \
  -drive if=pflash,format=raw,readonly=on,file="$(dpkg -L ovmf | grep 'OVMF_CODE_4M.fd$')" \
  -drive if=pflash,format=raw,file=vars.fd \
  -kernel "$KERNEL" -initrd initrd.gz -append "console=ttyS0 quiet" \
  -chardev socket,id=chrtpm,path="$W/vtpm/sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 \
  -net none > boot.log 2>&1 || true
tr -d '\r' < boot.log | sed 's/.*\(===BEGIN\)/\1/' > boot.clean
grep -q QUOTE_OK boot.clean || { echo "guest did not produce a quote; see boot log:" >&2; tail -50 boot.clean >&2; exit 1; }
extract() { awk -v b="===BEGIN $1===" -v e="===END $1===" '$0==b{f=1;next} $0==e{f=0} f' boot.clean | base64 -d > "$2"; }
rm -rf "$OUT"; mkdir -p "$OUT"
extract eventlog "$OUT/eventlog.bin"
for f in ak.pub ak.name quote.msg quote.sig quote.pcrs; do extract "$f" "$OUT/$f"; done
grep '^PCR ' boot.clean > "$OUT/pcrs.txt"
printf '%s\n' "$NONCE" > "$OUT/nonce.hex"
printf '%s\n' "$LIST" > "$OUT/pcr-list.txt"
# Oracles: tpm2-tools must accept the quote and replay the log to the quoted PCRs.
tpm2_checkquote -u "$OUT/ak.pub" -m "$OUT/quote.msg" -s "$OUT/quote.sig" -f "$OUT/quote.pcrs" \
    -g sha256 -q "$NONCE" -e "$OUT/eventlog.bin" >/dev/null
tpm2_eventlog "$OUT/eventlog.bin" > "$OUT/eventlog.yaml"
{
    echo "kernel: $(basename "$KERNEL")"
    echo "ovmf: $(dpkg-query -W -f '${Version}' ovmf)"
    echo "qemu: $(qemu-system-x86_64 --version | head -1)"
    echo "swtpm: $(swtpm --version 2>&1 | head -1)"
    echo "tpm2-tools: $(tpm2 --version 2>&1 | head -1)"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$OUT/VERSIONS"
echo "made $OUT ($(wc -c < "$OUT/eventlog.bin") byte event log)"
