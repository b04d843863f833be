# c03_rejected: tampered, badly signed, unsigned and untrusted bundles:
# apply and verify exit 3, nothing loads. Runs with klp_basic live (from 01,
# or from setup_case when the case runs alone).
# scenarios: main

setup_case() {
    ensure_applied klp_basic "$B/basic.klp"
}

run_case() {
    local before b
    before=$(modules)
    for b in tampered badsig unsigned untrusted; do
        kl apply "$B/bad/$b.klp"
        expect_rc 3 "$b"
        kl verify "$B/bad/$b.klp"
        expect_rc 3 "verify $b"
    done
    kl verify "$B/basic.klp"
    expect_rc 0 "verify of the good bundle"
    expect_modules_unchanged "$before"
    expect_cmdline "$BASIC_LINE"
}
