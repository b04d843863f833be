# c24_no_livepatch: a kernel without /sys/kernel/livepatch: apply and apply
# --dir exit 4.
# scenarios: main

# A kernel without livepatch support: apply (one bundle or --dir) exits 4,
# so a boot script can tell "cannot be patched" from "nothing to do". A
# tmpfs over /sys/kernel hides /sys/kernel/livepatch for the test.
run_case() {
    local before
    before=$(modules)
    mount -t tmpfs tmpfs /sys/kernel
    kl apply --dir "$B/dir"
    expect_rc 4 "apply --dir without livepatch"
    expect_says "no livepatch support"
    kl apply --json "$B/basic.klp"
    expect_rc 4 "apply without livepatch"
    [ "$(klp_json_get exit <"$T/out")" = 4 ] || klp_fail "--json does not say exit 4"
    umount /sys/kernel
    expect_modules_unchanged "$before"
    expect_no_livepatch
}
