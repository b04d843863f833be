# c27_sig_enforce: booted with module.sig_enforce=1: a module the kernel
# cannot verify is refused, exit 6, nothing loaded.
# scenarios: sigenforce

run_case() {
    local before
    expect_file /sys/module/module/parameters/sig_enforce Y
    before=$(modules)
    kl apply "$B/basic.klp"
    expect_rc 6
    expect_says "signature|signed"
    expect_modules_unchanged "$before"
    expect_gone klp_basic
    expect_no_livepatch
}
