# c22_name_mismatch: a manifest name that is not the module's own: exit 3
# before loading.
# scenarios: main

# A trusted bundle whose manifest name is not the module's own name is
# refused before the kernel loads it. (It used to be loaded, live, and then
# "unloaded" under the wrong name, which left it loaded.)
run_case() {
    local before
    before=$(modules)
    kl verify "$B/bad/renamed.klp"
    expect_rc 0 "the renamed bundle is trusted and intact"
    kl apply "$B/bad/renamed.klp"
    expect_rc 3
    expect_says "not the one the manifest names"
    expect_says "manifest klp_renamed .*module klp_basic"
    expect_modules_unchanged "$before"
    klp_module_loaded klp_basic && klp_fail "klp_basic was loaded"
    expect_no_record klp_renamed
    expect_no_record klp_basic
    expect_no_livepatch
}
