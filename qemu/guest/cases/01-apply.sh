# c01_apply: apply --json of basic.klp: /proc/cmdline is patched, the patch
# is live and settled, and status names this kernel build. Leaves klp_basic
# applied for cases 02-05.
# scenarios: main

run_case() {
    local before
    before=$(modules)
    kl apply --json "$B/basic.klp"
    expect_rc 0
    expect_json_changed true
    expect_cmdline "$BASIC_LINE"
    expect_applied klp_basic
    [ "$(modules)" = "$before" ] && klp_fail "/proc/modules did not change"
    # status identifies this exact kernel build, as the host extracted it.
    local got
    got=$(klp_json_get kernel.build_id <"$T/status")
    [ "$got" = "$(cat /klptest/build-id)" ] \
        || klp_fail "status kernel.build_id is '$got', expected $(cat /klptest/build-id)"
    got=$(klp_json_get kernel.release <"$T/status")
    [ "$got" = "$(uname -r)" ] || klp_fail "status kernel.release is '$got'"
}
