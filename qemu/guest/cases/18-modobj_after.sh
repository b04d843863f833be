# c18_modobj_after: klp_modobj applied after its target klp_target loaded:
# patched at once, original again after disable.
# scenarios: main

run_case() {
    target_load klp_target
    expect_file /proc/klp_target "klp_target: original"
    kl apply "$B/modobj.klp"
    expect_rc 0
    expect_applied klp_modobj
    expect_file /proc/klp_target "klp_target: patched"
    kl disable klp_modobj
    expect_rc 0
    expect_gone klp_modobj
    expect_file /proc/klp_target "klp_target: original"
    target_unload klp_target
}
