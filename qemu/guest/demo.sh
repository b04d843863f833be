#!/bin/sh
# The README walk-through, run in the guest: the original /proc/cmdline, a
# signed livepatch applied with klpctl, the patched output, status, the VEX
# document for scanners, disable, and the original output again. Each step says what it shows; the host
# prints this transcript.
. /klptest/lib.sh

BUNDLE=/klptest/bundles/klp_basic.klp

# say LINE...: a comment block before a step, one "# " line per argument.
say() {
    echo
    for line in "$@"; do
        echo "# $line"
    done
}

# show CMD...: print the command as typed at a prompt, then run it.
show() {
    echo "guest# $*"
    "$@"
    rc=$?
    [ "$rc" = 0 ] || echo "(exit $rc)"
    return $rc
}

klp_case_begin demo
orig=$(cat /proc/cmdline)

say "1. The running kernel, unpatched: /proc/cmdline prints the boot command line."
show cat /proc/cmdline

say "2. The bundle: klp_basic.ko, packed and signed on the host. klpctl checks" \
    "   it against the trusted keys in /etc/klpctl/keys.d and this kernel's build-id."
show klpctl verify "$BUNDLE" || klp_fail "verify"

say "3. Apply it: verify again, load it, wait for the kernel's transition."
show klpctl apply "$BUNDLE" || klp_fail "apply"

say "4. Patched: the same file now prints what the livepatch returns."
show cat /proc/cmdline
[ "$(cat /proc/cmdline)" = "klpctl-test: basic patched" ] || klp_fail "/proc/cmdline is not patched"

say "5. What is applied, as the kernel and klpctl see it."
show klpctl status || klp_fail "status"

say "6. What scanners are told: an OpenVEX document saying which CVEs the live" \
    "   patch fixes in this kernel (apply also keeps it in /run/klpctl/vex.json)."
show klpctl vex || klp_fail "vex"
grep -q '"status":"fixed"' /run/klpctl/vex.json || klp_fail "/run/klpctl/vex.json claims no fix"

say "7. Disable it: the reverse transition, then the module is removed, and" \
    "   the VEX document with it (nothing left to claim)."
show klpctl disable klp_basic || klp_fail "disable"
[ ! -e /run/klpctl/vex.json ] || klp_fail "/run/klpctl/vex.json still there"

say "8. Back to the original output."
show cat /proc/cmdline
[ "$(cat /proc/cmdline)" = "$orig" ] || klp_fail "/proc/cmdline is not restored"

say "9. The kernel's log of all this, with klpctl's audit lines."
echo "guest# dmesg | grep -E 'livepatch: |klpctl: '"
dmesg | sed -n '/klptest: case demo start/,$p' | grep -E 'livepatch: |klpctl: '

echo
if [ "$KLP_CASE_FAILED" = 0 ]; then
    echo "# Result: PASS. klpctl applied the signed livepatch, the kernel ran the"
    echo "# patched code, and klpctl disable brought the original back."
fi
klp_case_end
