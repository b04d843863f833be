# c15_revert_stall: an enable that times out and whose revert stalls too:
# exit 8, never forced.
# scenarios: main

# Exit 8: the transition times out, and the revert (writing 0 to enabled)
# stalls too. klptest_parked sits in the original function and blocks the
# enable; klptest_hold was switched to the patched state while it slept and
# then entered the replacement, where hold_new keeps it: it blocks the
# reverse transition. klpctl must give up after max(timeout, 10 s), say the
# patch is still in transition, and never force it.
run_case() {
    local t0 dt en tr
    stall_target_load
    hold_new 1
    t0=$(klp_now_cs)
    kl apply --timeout 5 "$B/stall.klp"
    dt=$(($(klp_now_cs) - t0))
    echo "apply returned after ${dt}cs"
    expect_rc 8
    [ "$dt" -ge 1450 ] || klp_fail "apply gave up after ${dt}cs, before 5 s + 10 s"
    [ "$dt" -le 1900 ] || klp_fail "apply took ${dt}cs, want about 5 s + 10 s"
    kl_says "klptest_parked|[^0-9]$STALL_PID([^0-9]|\$)" \
        || klp_fail "the task blocking the enable (klptest_parked, pid $STALL_PID) is not named"
    # The revert's blocker, reported after klpctl says it is reverting (the
    # tasks listed before that line are the ones that blocked the enable).
    kl_says "klptest_hold|[^0-9]$HOLD_PID([^0-9]|\$)" \
        || klp_fail "the task blocking the revert (klptest_hold, pid $HOLD_PID) is not named"
    sed -n '/reverting/,$p' "$T/err" | grep -qE "klptest_hold|[^0-9]$HOLD_PID([^0-9]|\$)" \
        || klp_fail "klpctl names the revert's blocker (klptest_hold) before its 'reverting' line, as if it had blocked the enable"
    expect_says "still in transition|not reverted"
    # The kernel agrees: still reversing, and status reports just that.
    hold_inside || klp_fail "klptest_hold is not inside the replacement"
    expect_file /sys/kernel/livepatch/klp_stall/transition 1
    expect_file /sys/kernel/livepatch/klp_stall/enabled 0
    klp_module_loaded klp_stall || klp_fail "klp_stall module gone while its patch is in transition"
    status_json
    en=$(status_field klp_stall enabled) || klp_fail "status does not list klp_stall"
    tr=$(status_field klp_stall transition)
    [ "$en" = false ] || klp_fail "status: klp_stall enabled=$en, expected false"
    [ "$tr" = true ] || klp_fail "status: klp_stall transition=$tr, expected true"
    [ "$(status_field klp_stall blocking.0.comm)" = klptest_hold ] \
        || klp_fail "status does not name klptest_hold as blocking: $(grep 'blocking' "$T/status.flat" | tr '\n' ' ')"
    [ "$(status_field klp_stall record.state)" = reverting ] \
        || klp_fail "status: klpctl's record says '$(status_field klp_stall record.state)', expected reverting"
    expect_not_forced
    # Release both threads: the reverse transition completes by itself.
    stall_release
    hold_new 0
    klp_wait_for 10 klp_patch_gone klp_stall \
        || klp_fail "reverse transition did not finish after the release"
    klp_wait_for 5 sh -c "[ \$(cat $STALL_PARAMS/left) = 1 ]" \
        || klp_fail "klptest_parked did not leave the wait function"
    expect_file "$STALL_PARAMS/result" 0
    # The module stays loaded until klpctl disable removes it.
    klp_module_loaded klp_stall || klp_fail "klp_stall module vanished by itself"
    status_json
    [ "$(klp_json_get leftover.0 <"$T/status")" = klp_stall ] \
        || klp_fail "status leftover is not [klp_stall]: $(grep '^leftover' "$T/status.flat" | tr '\n' ' ')"
    kl disable klp_stall
    expect_rc 0 "disable of the leftover module"
    expect_gone klp_stall
    [ "$(klp_json_get leftover <"$T/status")" = "[]" ] \
        || klp_fail "leftover not empty after disable: $(grep '^leftover' "$T/status.flat" | tr '\n' ' ')"
    hold_result_is 0
    expect_not_forced
    target_unload klp_stall_target
    expect_no_livepatch
}
