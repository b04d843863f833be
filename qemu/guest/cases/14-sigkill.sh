# c14_sigkill: apply killed with SIGKILL mid-transition: status reports what
# the kernel does, and a later apply recovers.
# scenarios: main

run_case() {
    local pa ra en tr
    stall_target_load
    klpctl apply --timeout 60 "$B/stall.klp" >"$T/a" 2>&1 &
    pa=$!
    klp_wait_for 10 klp_patch_present klp_stall || klp_fail "apply never loaded klp_stall"
    sleep 1
    kill -9 $pa
    wait $pa
    ra=$?
    sed 's/^/  a| /' "$T/a"
    echo "killed apply exited $ra"
    expect_file /sys/kernel/livepatch/klp_stall/transition 1
    # status must report what the kernel is doing, not what klpctl meant to do.
    status_json
    en=$(status_field klp_stall enabled) || klp_fail "status does not list klp_stall"
    tr=$(status_field klp_stall transition)
    is_true "$en" || klp_fail "status: klp_stall enabled=$en during the transition"
    is_true "$tr" || klp_fail "status: klp_stall transition=$tr during the transition"
    stall_release
    klp_wait_for 10 stall_settled || klp_fail "transition did not finish after release"
    kl apply "$B/stall.klp"
    expect_rc 0 "apply after the interrupted one"
    expect_applied klp_stall
    f=$(klp_json_get leftover <"$T/status") || true
    [ "$f" = "[]" ] || klp_fail "leftover not empty after recovery: $(grep '^leftover' "$T/status.flat" | tr '\n' ' ')"
    kl disable klp_stall
    expect_rc 0
    expect_gone klp_stall
    target_unload klp_stall_target
    expect_no_livepatch
}
