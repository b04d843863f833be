# c08_persistent_floor: the rollback floor kept in --state-dir survives a
# "reboot" (a cleared /run/klpctl); without --state-dir only this boot's
# floor counts.
# scenarios: main

run_case() {
    local sd=/tmp/klpctl-state before
    rm -rf "$sd"
    kl apply --state-dir "$sd" "$B/cumul_v3.klp"
    expect_rc 0 "apply v3 with --state-dir"
    expect_file "$sd/streams/cumul" "newest 3
cumulative 3"
    kl disable klp_cumul_v3
    expect_rc 0 "disable v3"
    # A reboot forgets /run/klpctl; the floor in --state-dir must not.
    rm -rf /run/klpctl
    before=$(modules)
    kl apply --state-dir "$sd" "$B/cumul_v2.klp"
    expect_rc 5 "v2 below the persistent floor"
    expect_says "version 2 < applied 3"
    expect_modules_unchanged "$before"
    expect_no_livepatch
    [ ! -e /run/klpctl/patches/klp_cumul_v2 ] || klp_fail "a refused apply left a record"
    # Without --state-dir only this boot's floor counts, and it is gone.
    kl apply "$B/cumul_v2.klp"
    expect_rc 0 "v2 without --state-dir after the per-boot floor was cleared"
    expect_cmdline "klpctl-test: cumulative v2"
    kl disable klp_cumul_v2
    expect_rc 0 "disable v2"
    expect_no_livepatch
    rm -rf "$sd"
}
