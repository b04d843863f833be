# c07_downgrade: an older cumulative bundle is refused (exit 5) unless
# --allow-downgrade; ends with nothing applied. Needs klp_cumul_v3 live: 06
# leaves it applied, and setup_case applies it when the case runs alone.
# scenarios: main

setup_case() {
    ensure_applied klp_cumul_v3 "$B/cumul_v3.klp"
}

run_case() {
    local before
    before=$(modules)
    kl apply "$B/cumul_v2.klp"
    expect_rc 5 "downgrade without --allow-downgrade"
    expect_modules_unchanged "$before"
    expect_cmdline "klpctl-test: cumulative v3"
    expect_applied klp_cumul_v3
    kl apply --allow-downgrade "$B/cumul_v2.klp"
    expect_rc 0 "downgrade with --allow-downgrade"
    expect_cmdline "klpctl-test: cumulative v2"
    expect_applied klp_cumul_v2
    expect_gone klp_cumul_v3
    kl disable klp_cumul_v2
    expect_rc 0 "disable v2"
    expect_gone klp_cumul_v2
    expect_no_livepatch
}
