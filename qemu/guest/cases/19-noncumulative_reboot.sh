# c19_noncumulative_reboot: a non-cumulative stream beside a cumulative one:
# boot-time apply --dir restores the same set after every "reboot".
# scenarios: main

disable_all() {
    local p
    for p in $(ls /sys/kernel/livepatch); do
        kl disable "$p"
        expect_rc 0 "disable $p"
    done
    expect_no_livepatch
}

# Boot-time apply --dir restores exactly the set that was applied before a
# reboot: every member of a non-cumulative stream, and the newest bundle of
# a cumulative one. (The persistent floor used to refuse ns v1 after ns v2,
# so after a reboot nothing was applied, on every boot.)
run_case() {
    local sd=/tmp/klpctl-ns-state boot before
    rm -rf "$sd"
    for boot in 1 2 3; do
        kl apply --dir "$B/nsdir" --state-dir "$sd"
        expect_rc 0 "apply --dir, boot $boot"
        expect_applied klp_basic
        expect_applied klp_modobj
        expect_applied klp_cumul_v3
        klp_module_loaded klp_cumul_v1 && klp_fail "boot $boot: superseded cumul v1 loaded"
        klp_module_loaded klp_cumul_v2 && klp_fail "boot $boot: superseded cumul v2 loaded"
        expect_cmdline "$BASIC_LINE"
        expect_file "$sd/streams/ns" "newest 2
cumulative 0"
        expect_file "$sd/streams/cumul" "newest 3
cumulative 3"
        # The same directory again, same boot: nothing to do.
        kl apply --json --dir "$B/nsdir" --state-dir "$sd"
        expect_rc 0 "second apply --dir, boot $boot"
        expect_json_changed false
        # "Reboot": the patches and /run/klpctl go, --state-dir stays.
        disable_all
        rm -rf /run/klpctl
    done
    # The persistent floor still refuses what really is a downgrade: a
    # cumulative bundle older than the one applied before the reboot.
    before=$(modules)
    kl apply --state-dir "$sd" "$B/cumul_v2.klp"
    expect_rc 5 "cumulative v2 after v3, across the reboot"
    expect_says "version 2 < applied 3"
    expect_modules_unchanged "$before"
    expect_no_record klp_cumul_v2
    rm -rf "$sd"
}
