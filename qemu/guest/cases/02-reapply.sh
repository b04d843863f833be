# c02_reapply: applying basic.klp again changes nothing: "already applied",
# "changed":false, no new enable in the kernel log. Needs klp_basic live:
# 01 leaves it applied, and setup_case applies it when the case runs alone.
# scenarios: main

setup_case() {
    ensure_applied klp_basic "$B/basic.klp"
}

run_case() {
    local before refcnt
    before=$(modules)
    kl apply "$B/basic.klp"
    expect_rc 0
    expect_says "already applied"
    kl apply --json "$B/basic.klp"
    expect_rc 0
    expect_json_changed false
    expect_modules_unchanged "$before"
    expect_cmdline "$BASIC_LINE"
    expect_applied klp_basic
    # Nothing reached the kernel: no new patch was enabled.
    klp_case_dmesg | grep -q "enabling patch" && klp_fail "kernel enabled a patch again"
}
