# c04_wrong_kernel: bundles for another kernel or another build id: exit 4,
# nothing loads. Runs with klp_basic from 01 applied.
# scenarios: main

run_case() {
    local before b
    before=$(modules)
    for b in other_kernel wrong_build_id; do
        kl apply "$B/wrong/$b.klp"
        expect_rc 4 "$b"
    done
    expect_modules_unchanged "$before"
    expect_cmdline "$BASIC_LINE"
}
