# c06_replace_chain: the cumulative chain v1 -> v2 -> v3, each replacing the
# one before; status --json reports each one's stack_order, 1 since it
# replaced the one before (a number from 6.14, null before). Leaves
# klp_cumul_v3 applied for 07.
# scenarios: main

run_case() {
    local v
    for v in 1 2 3; do
        kl apply "$B/cumul_v$v.klp"
        expect_rc 0 "v$v"
        expect_cmdline "klpctl-test: cumulative v$v"
        expect_stack_order klp_cumul_v$v 1
    done
    expect_applied klp_cumul_v3
    for v in 1 2; do
        expect_gone klp_cumul_v$v
    done
    [ "$(ls /sys/kernel/livepatch)" = klp_cumul_v3 ] \
        || klp_fail "sysfs holds $(ls /sys/kernel/livepatch | tr '\n' ' ')"
}
