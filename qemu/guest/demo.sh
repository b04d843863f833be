#!/bin/sh
# The README walk-through, run in the guest: the original /proc/cmdline, a
# signed livepatch applied with klpctl, the patched output, status, disable,
# and the original output again.
. /klptest/lib.sh

show() {
    echo
    echo "guest# $*"
    "$@"
    rc=$?
    [ "$rc" = 0 ] || echo "(exit $rc)"
    return $rc
}

klp_case_begin demo
orig=$(cat /proc/cmdline)
show cat /proc/cmdline
show klpctl verify /klptest/bundles/klp_basic.klp || klp_fail "verify"
show klpctl apply /klptest/bundles/klp_basic.klp || klp_fail "apply"
show cat /proc/cmdline
[ "$(cat /proc/cmdline)" = "klpctl-test: basic patched" ] || klp_fail "not patched"
show klpctl status || klp_fail "status"
show klpctl disable klp_basic || klp_fail "disable"
show cat /proc/cmdline
[ "$(cat /proc/cmdline)" = "$orig" ] || klp_fail "not restored"
echo
klp_case_end
