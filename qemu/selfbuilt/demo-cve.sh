#!/bin/bash
# A real CVE fixed live, on screen (qemu/demo.sh cve): the self-built kernel
# with CVE-2024-1086 unfixed, the upstream fix turned into a live patch by
# the kernel's own klp-build, packed and signed with klpctl, then in the
# guest: vulnerable, apply, fixed, status, vex, disable, vulnerable again.
#
# The first run builds the kernel and the patch (several minutes on 2
# cores; cached under /var/cache/klpctl-test/selfbuilt afterwards).
#
# usage: demo-cve.sh
set -euo pipefail
SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$SELF_DIR/../lib.sh"
step() { printf '\n==> %s\n' "$*"; }

# The tier's lock (run-cve.sh), held until the log is shown, so a test run
# beside the demo neither tramples nor replaces the demo's files.
mkdir -p "$OUT_DIR"
exec 8>"$OUT_DIR/.selfbuilt.lock"
if ! flock -n 8; then
    log "waiting for $OUT_DIR/.selfbuilt.lock (another run of this tier in this clone)"
    flock 8
fi
export KLPCTL_SELFBUILT_LOCKED=1

step "the kernel and its live patch (qemu/selfbuilt/build-cve.sh; cached after the first run)"
kdir=$("$SELF_DIR/build-cve.sh")
echo "kernel $(cat "$kdir/release") from Debian's linux-source $(cat "$kdir/source-version"), build-id $(cat "$kdir/build-id")"
echo "cold build times (s): $(tr '\n' ' ' <"$kdir/times")"

step "the upstream fix of $(cat "$kdir/cve"), computed back from the source (what klp-build was given)"
cat "$kdir/fix.patch"

step "what klp-build made from it"
echo "host\$ ./scripts/livepatch/klp-build cve-2024-1086.patch"
modinfo "$kdir/livepatch-cve-2024-1086.ko" 2>/dev/null | grep -E '^(filename|name|vermagic|livepatch):' \
    || ls -l "$kdir/livepatch-cve-2024-1086.ko"
echo "host\$ scripts/sign-file sha256 certs/signing_key.pem certs/signing_key.x509 livepatch-cve-2024-1086.ko"

step "packing, signing and booting (qemu/selfbuilt/run-cve.sh)"
set +e
"$SELF_DIR/run-cve.sh" -q cve
rc=$?
set -e
logf=$OUT_DIR/logs/selfbuilt-cve.log
echo "host\$ klpctl pack livepatch-cve-2024-1086.signed.ko -o cve-2024-1086.klp --stream cve-2024-1086 --version 1 \\"
echo "        --kernel-notes notes --replace --cve $(cat "$kdir/cve") --product pkg:generic/linux-kernel@$(cat "$kdir/release") -s klptest.sec"
"${KLPCTL:-$REPO_DIR/target/x86_64-unknown-linux-musl/release/klpctl}" info "$OUT_DIR/selfbuilt/bundles/cve-2024-1086.klp" 2>/dev/null || true

step "in the guest"
tr -d '\r' <"$logf" | sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[a-zA-Z]//g' \
    | sed -n '/^--- case cve_vulnerable$/,/^--- case cve_replace_unsaid$/p' \
    | grep -v -e '^--- case ' -e '^KLPTEST' -e '^klptest: '
echo
pass=$(grep -c '^KLPTEST cve_[a-z]* PASS' "$logf" || true)
if [ "$rc" = 0 ] && [ "$pass" -ge 6 ] && ! grep -q '^KLPTEST [^ ]* FAIL' "$logf"; then
    echo "PASS: $(cat "$kdir/cve") fixed live by klp-build's module through klpctl, and unfixed again"
else
    tr -d '\r' <"$logf" | grep -E '^KLPTEST [^ ]* FAIL' || tail -n 30 "$logf"
    echo "FAIL: see $logf"
    exit 1
fi
