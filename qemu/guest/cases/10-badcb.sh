# c10_badcb: a pre-patch callback that fails: exit 6 with the kernel's
# reason, nothing left loaded.
# scenarios: main

run_case() {
    local before
    before=$(modules)
    kl apply "$B/badcb.klp"
    expect_rc 6
    # The callback's error is ENODEV; klpctl must pass the kernel's reason on.
    expect_says "ENODEV|no such device|callback failed"
    expect_modules_unchanged "$before"
    expect_gone klp_badcb
    expect_no_livepatch
}
