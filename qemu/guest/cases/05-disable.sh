# c05_disable: disable --json of klp_basic (applied by 01, or by setup_case
# when the case runs alone) restores /proc/cmdline; a second and a third
# disable change nothing.
# scenarios: main

setup_case() {
    ensure_applied klp_basic "$B/basic.klp"
}

run_case() {
    kl disable --json klp_basic
    expect_rc 0
    expect_json_changed true
    expect_cmdline "$ORIG_CMDLINE"
    expect_gone klp_basic
    kl disable klp_basic
    expect_rc 0 "second disable"
    expect_says "not applied"
    kl disable --json klp_basic
    expect_rc 0 "third disable"
    expect_json_changed false
}
