# c17_modobj_before: klp_modobj applied before its target klp_target loads:
# the target comes up patched, and is original again after disable.
# scenarios: main

run_case() {
    kl apply "$B/modobj.klp"
    expect_rc 0
    expect_applied klp_modobj
    target_load klp_target
    expect_file /proc/klp_target "klp_target: patched"
    kl disable klp_modobj
    expect_rc 0
    expect_gone klp_modobj
    expect_file /proc/klp_target "klp_target: original"
    target_unload klp_target
}
