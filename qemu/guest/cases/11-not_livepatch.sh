# c11_not_livepatch: payloads that are no livepatch: a plain module is
# refused before loading; klp_noreg (livepatch=Y, registers nothing) is
# unloaded again.
# scenarios: main

run_case() {
    local before
    before=$(modules)
    # Trusted and intact, but the payload is klp_target.ko, a plain module:
    # its init runs and registers no livepatch, so klpctl must unload it.
    kl verify "$B/bad/notlp.klp"
    expect_rc 0 "verify of the trusted non-livepatch bundle"
    kl apply "$B/bad/notlp.klp"
    expect_rc 6 "apply of a non-livepatch payload"
    expect_says "not a livepatch"
    expect_modules_unchanged "$before"
    klp_module_loaded klp_target && klp_fail "klp_target stayed loaded"
    [ ! -e /proc/klp_target ] || klp_fail "/proc/klp_target exists: the module stayed"
    [ ! -e /run/klpctl/patches/klp_target ] || klp_fail "a record was left for klp_target"
    # A module marked livepatch=Y whose init registers no patch: it loads
    # and must be unloaded again, under the name the kernel loaded it as.
    kl apply "$B/bad/noreg.klp"
    expect_rc 6 "apply of a livepatch=Y module that registers no patch"
    expect_says "registered none"
    expect_modules_unchanged "$before"
    klp_module_loaded klp_noreg && klp_fail "klp_noreg stayed loaded"
    expect_no_record klp_noreg
    expect_no_livepatch
}
