# c04_wrong_kernel: bundles for another kernel, another build id or another
# architecture: exit 4, nothing loads. Runs with klp_basic live (from 01,
# or from setup_case when the case runs alone).
# scenarios: main

setup_case() {
    ensure_applied klp_basic "$B/basic.klp"
}

run_case() {
    local before b
    before=$(modules)
    for b in other_kernel wrong_build_id; do
        kl apply "$B/wrong/$b.klp"
        expect_rc 4 "$b"
    done
    # This release, the other architecture: the message names both.
    kl apply "$B/wrong/other_arch.klp"
    expect_rc 4 other_arch
    case $(uname -m) in
        aarch64) expect_says "bundle is for x86_64, running aarch64" ;;
        *) expect_says "bundle is for aarch64, running $(uname -m)" ;;
    esac
    expect_modules_unchanged "$before"
    expect_cmdline "$BASIC_LINE"
}
