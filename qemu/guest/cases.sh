#!/bin/sh
# klpctl's kernel test cases, run inside the QEMU guest (busybox sh).
#
# Each case checks behaviour (what /proc prints) and state (sysfs,
# /proc/modules, klpctl's exit code and `status --json`), and prints
# "KLPTEST <case> PASS" or "KLPTEST <case> FAIL <reason>". Cases run in
# sequence and each one leaves the system as it found it: no livepatch
# loaded. The scenario "sigenforce" (booted with module.sig_enforce=1) runs
# only the signature-enforcement case.
#
# Only the fixture targets (klp_stall_target, klp_target) are loaded with
# insmod; every livepatch goes through klpctl.
. /klptest/lib.sh

B=/klptest/bundles
M=/klptest/modules
T=/tmp/klptest
mkdir -p "$T"
SCENARIO=$(cat /klptest/scenario)
# Read before anything patches /proc/cmdline.
ORIG_CMDLINE=$(cat /proc/cmdline)
BASIC_LINE="klpctl-test: basic patched"

# --- running klpctl -------------------------------------------------------

# kl ARGS...: run klpctl; stdout to $T/out, stderr to $T/err, both echoed to
# the console. Sets KL_RC. A klpctl that hangs is killed after 150 s (exit
# 137), so a hang fails its case instead of the whole boot.
kl() {
    echo "+ klpctl $*"
    timeout -s KILL 150 klpctl "$@" >"$T/out" 2>"$T/err"
    KL_RC=$?
    sed 's/^/  | /' "$T/out"
    sed 's/^/  ! /' "$T/err"
    echo "  = exit $KL_RC"
}

expect_rc() {
    [ "$KL_RC" = "$1" ] || klp_fail "klpctl exited $KL_RC, expected $1${2:+ ($2)}"
}

# kl_says PATTERN: klpctl's stdout or stderr matches PATTERN
# (extended regex, case-insensitive).
kl_says() {
    cat "$T/out" "$T/err" | grep -qiE "$1"
}

expect_says() {
    kl_says "$1" || klp_fail "klpctl output lacks /$1/"
}

# expect_json_changed true|false: the --json output of apply/disable.
expect_json_changed() {
    local got
    got=$(klp_json_get changed <"$T/out") \
        || { klp_fail "no \"changed\" in --json output"; return; }
    [ "$got" = "$1" ] || klp_fail "\"changed\" is $got, expected $1"
}

# --- observing the kernel -------------------------------------------------

is_true() {
    case $1 in true | 1) return 0 ;; *) return 1 ;; esac
}

modules() {
    awk '{print $1}' /proc/modules | sort | tr '\n' ' '
}

expect_file() { # FILE EXPECTED
    local got
    got=$(cat "$1" 2>&1)
    [ "$got" = "$2" ] || klp_fail "$1 reads '$got', expected '$2'"
}

expect_cmdline() {
    expect_file /proc/cmdline "$1"
}

# Refresh $T/status.flat from `klpctl status --json`.
status_json() {
    klpctl status --json >"$T/status" 2>"$T/status.err"
    local rc=$?
    sed 's/^/  s| /' "$T/status"
    [ "$rc" = 0 ] || klp_fail "status --json exited $rc: $(cat "$T/status.err")"
    klp_json_flat <"$T/status" >"$T/status.flat" \
        || klp_fail "status --json printed invalid JSON"
}

# status_field NAME FIELD: FIELD of patch NAME in the last status_json.
status_field() {
    local idx
    idx=$(sed -n "s/^patches\.\([0-9]*\)\.name=$1\$/\1/p" "$T/status.flat" | head -n 1)
    [ -n "$idx" ] || return 1
    sed -n "s/^patches\.$idx\.$2=//p" "$T/status.flat"
}

# expect_applied NAME: the patch is loaded, enabled, settled, and klpctl
# status agrees.
expect_applied() {
    klp_module_loaded "$1" || klp_fail "$1 not in /proc/modules"
    expect_file "/sys/kernel/livepatch/$1/enabled" 1
    expect_file "/sys/kernel/livepatch/$1/transition" 0
    status_json
    local en tr
    en=$(status_field "$1" enabled) || { klp_fail "status does not list $1"; return; }
    tr=$(status_field "$1" transition)
    is_true "$en" || klp_fail "status says $1 enabled=$en"
    is_true "$tr" && klp_fail "status says $1 transition=$tr"
    return 0
}

# expect_gone NAME: no trace of the patch in the kernel or in status.
expect_gone() {
    klp_patch_present "$1" && klp_fail "$1 still in /sys/kernel/livepatch"
    klp_module_loaded "$1" && klp_fail "$1 still in /proc/modules"
    status_json
    status_field "$1" name >/dev/null && klp_fail "status still lists $1"
    return 0
}

# expect_modules_unchanged BEFORE: /proc/modules lists the same names.
expect_modules_unchanged() {
    local now
    now=$(modules)
    [ "$now" = "$1" ] || klp_fail "modules changed: before '$1', now '$now'"
}

# expect_no_livepatch: the system is back to its pristine state.
expect_no_livepatch() {
    local lp
    lp=$(ls /sys/kernel/livepatch)
    [ -z "$lp" ] || klp_fail "livepatches left: $lp"
    expect_cmdline "$ORIG_CMDLINE"
}

target_load() { # MODULE
    insmod "$M/$1.ko" || klp_fail "insmod $1"
}

target_unload() { # MODULE
    klp_module_loaded "$1" || return 0
    rmmod "$1" || klp_fail "rmmod $1"
}

# Load klp_stall_target and wait until its threads run: klptest_parked
# (parked in the original klp_stall_target_wait) and klptest_hold (calls it
# every 100 ms; parks in klp_stall's replacement while hold_new is 1).
stall_target_load() {
    target_load klp_stall_target
    klp_wait_for 5 pidof klptest_parked >/dev/null \
        || klp_fail "klptest_parked thread did not start"
    klp_wait_for 5 pidof klptest_hold >/dev/null \
        || klp_fail "klptest_hold thread did not start"
    STALL_PID=$(pidof klptest_parked)
    HOLD_PID=$(pidof klptest_hold)
}

STALL_PARAMS=/sys/module/klp_stall_target/parameters

stall_param() { # NAME
    cat "$STALL_PARAMS/$1"
}

stall_release() {
    echo 1 >"$STALL_PARAMS/release"
}

# hold_new 0|1: whether klp_stall's replacement keeps klptest_hold inside it.
hold_new() {
    echo "$1" >"$STALL_PARAMS/hold_new"
}

hold_inside() {
    [ "$(stall_param holding)" = 1 ]
}

# hold_result_is 0|1: wait for two more calls by klptest_hold to return
# (the first may have begun before the caller's change), then check what
# the last one returned: 0 from the original function, 1 from klp_stall's.
hold_result_is() {
    local c
    c=$(stall_param hold_calls)
    klp_wait_for 5 sh -c "[ \$(cat $STALL_PARAMS/hold_calls) -ge $((c + 2)) ]" \
        || { klp_fail "klptest_hold made no calls (hold_calls stays $c)"; return; }
    expect_file "$STALL_PARAMS/hold_result" "$1"
}

# The kernel logs this when someone writes 1 to a patch's force: klpctl
# never may.
expect_not_forced() {
    klp_case_dmesg | grep -qi "forcing remaining tasks" \
        && klp_fail "the kernel log shows a forced transition"
    return 0
}

stall_settled() {
    [ "$(cat /sys/kernel/livepatch/klp_stall/transition 2>/dev/null)" = 0 ]
}

# Time of a case, for the host's per-case figures.
case_timer_start() { CASE_T0=$(klp_now_cs); }
case_timer_end() { echo "KLPTEST-TIME $KLP_CASE $(($(klp_now_cs) - CASE_T0))cs"; }

begin() {
    klp_case_begin "$1"
    case_timer_start
}

end() {
    case_timer_end
    klp_case_end
}

# --- cases ----------------------------------------------------------------

case_apply() {
    begin c01_apply
    local before
    before=$(modules)
    kl apply --json "$B/basic.klp"
    expect_rc 0
    expect_json_changed true
    expect_cmdline "$BASIC_LINE"
    expect_applied klp_basic
    [ "$(modules)" = "$before" ] && klp_fail "/proc/modules did not change"
    # status identifies this exact kernel build, as the host extracted it.
    local got
    got=$(klp_json_get kernel.build_id <"$T/status")
    [ "$got" = "$(cat /klptest/build-id)" ] \
        || klp_fail "status kernel.build_id is '$got', expected $(cat /klptest/build-id)"
    got=$(klp_json_get kernel.release <"$T/status")
    [ "$got" = "$(uname -r)" ] || klp_fail "status kernel.release is '$got'"
    end
}

case_reapply() {
    begin c02_reapply
    local before refcnt
    before=$(modules)
    kl apply "$B/basic.klp"
    expect_rc 0
    expect_says "already applied"
    kl apply --json "$B/basic.klp"
    expect_rc 0
    expect_json_changed false
    expect_modules_unchanged "$before"
    expect_cmdline "$BASIC_LINE"
    expect_applied klp_basic
    # Nothing reached the kernel: no new patch was enabled.
    klp_case_dmesg | grep -q "enabling patch" && klp_fail "kernel enabled a patch again"
    end
}

case_rejected() {
    begin c03_rejected
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
    end
}

case_wrong_kernel() {
    begin c04_wrong_kernel
    local before b
    before=$(modules)
    for b in other_kernel wrong_build_id; do
        kl apply "$B/wrong/$b.klp"
        expect_rc 4 "$b"
    done
    expect_modules_unchanged "$before"
    expect_cmdline "$BASIC_LINE"
    end
}

case_disable() {
    begin c07_disable
    kl disable --json klp_basic
    expect_rc 0
    expect_json_changed true
    expect_cmdline "$ORIG_CMDLINE"
    expect_gone klp_basic
    kl disable klp_basic
    expect_rc 0 "second disable"
    expect_says "not applied"
    kl disable --json klp_basic
    expect_rc 0 "third disable"
    expect_json_changed false
    end
}

case_replace_chain() {
    begin c05_replace_chain
    local v
    for v in 1 2 3; do
        kl apply "$B/cumul_v$v.klp"
        expect_rc 0 "v$v"
        expect_cmdline "klpctl-test: cumulative v$v"
    done
    expect_applied klp_cumul_v3
    for v in 1 2; do
        expect_gone klp_cumul_v$v
    done
    [ "$(ls /sys/kernel/livepatch)" = klp_cumul_v3 ] \
        || klp_fail "sysfs holds $(ls /sys/kernel/livepatch | tr '\n' ' ')"
    end
}

case_downgrade() {
    begin c06_downgrade
    local before
    before=$(modules)
    kl apply "$B/cumul_v2.klp"
    expect_rc 5 "downgrade without --allow-downgrade"
    expect_modules_unchanged "$before"
    expect_cmdline "klpctl-test: cumulative v3"
    expect_applied klp_cumul_v3
    kl apply --allow-downgrade "$B/cumul_v2.klp"
    expect_rc 0 "downgrade with --allow-downgrade"
    expect_cmdline "klpctl-test: cumulative v2"
    expect_applied klp_cumul_v2
    expect_gone klp_cumul_v3
    kl disable klp_cumul_v2
    expect_rc 0 "disable v2"
    expect_gone klp_cumul_v2
    expect_no_livepatch
    end
}

case_persistent_floor() {
    begin c06b_persistent_floor
    local sd=/tmp/klpctl-state before
    rm -rf "$sd"
    kl apply --state-dir "$sd" "$B/cumul_v3.klp"
    expect_rc 0 "apply v3 with --state-dir"
    expect_file "$sd/streams/cumul" "newest 3
cumulative 3"
    kl disable klp_cumul_v3
    expect_rc 0 "disable v3"
    # A reboot forgets /run/klpctl; the floor in --state-dir must not.
    rm -rf /run/klpctl
    before=$(modules)
    kl apply --state-dir "$sd" "$B/cumul_v2.klp"
    expect_rc 5 "v2 below the persistent floor"
    expect_says "version 2 < applied 3"
    expect_modules_unchanged "$before"
    expect_no_livepatch
    [ ! -e /run/klpctl/patches/klp_cumul_v2 ] || klp_fail "a refused apply left a record"
    # Without --state-dir only this boot's floor counts, and it is gone.
    kl apply "$B/cumul_v2.klp"
    expect_rc 0 "v2 without --state-dir after the per-boot floor was cleared"
    expect_cmdline "klpctl-test: cumulative v2"
    kl disable klp_cumul_v2
    expect_rc 0 "disable v2"
    expect_no_livepatch
    rm -rf "$sd"
    end
}

case_stall_timeout() {
    begin c08_stall_timeout
    stall_target_load
    local t0 dt
    t0=$(klp_now_cs)
    kl apply --timeout 5 "$B/stall.klp"
    dt=$(($(klp_now_cs) - t0))
    echo "apply returned after ${dt}cs"
    expect_rc 7
    [ "$dt" -le 900 ] || klp_fail "apply took ${dt}cs, want about 7 s at most"
    [ "$dt" -ge 450 ] || klp_fail "apply gave up after ${dt}cs, before its 5 s timeout"
    kl_says "klptest_parked|[^0-9]$STALL_PID([^0-9]|\$)" \
        || klp_fail "the blocking task (klptest_parked, pid $STALL_PID) is not named"
    expect_gone klp_stall
    # Reverted: once released, the thread runs the original function.
    stall_release
    klp_wait_for 5 sh -c '[ "$(cat /sys/module/klp_stall_target/parameters/left)" = 1 ]' \
        || klp_fail "thread did not leave the wait function"
    expect_file /sys/module/klp_stall_target/parameters/result 0
    target_unload klp_stall_target
    end
}

case_badcb() {
    begin c09_badcb
    local before
    before=$(modules)
    kl apply "$B/badcb.klp"
    expect_rc 6
    # The callback's error is ENODEV; klpctl must pass the kernel's reason on.
    expect_says "ENODEV|no such device|callback failed"
    expect_modules_unchanged "$before"
    expect_gone klp_badcb
    expect_no_livepatch
    end
}

case_not_livepatch() {
    begin c16_not_livepatch
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
    end
}

case_sig_enforce() {
    begin c10_sig_enforce
    local before
    expect_file /sys/module/module/parameters/sig_enforce Y
    before=$(modules)
    kl apply "$B/basic.klp"
    expect_rc 6
    expect_says "signature|signed"
    expect_modules_unchanged "$before"
    expect_gone klp_basic
    expect_no_livepatch
    end
}

# apply_pair A B: runs `klpctl apply A` and `klpctl apply B` at the same
# time, shows both outputs, and leaves their exit codes in ra and rb.
apply_pair() {
    local pa pb
    klpctl apply "$1" >"$T/a" 2>&1 &
    pa=$!
    klpctl apply "$2" >"$T/b" 2>&1 &
    pb=$!
    wait $pa
    ra=$?
    wait $pb
    rb=$?
    sed 's/^/  a| /' "$T/a"
    sed 's/^/  b| /' "$T/b"
}

case_concurrent() {
    begin c11_concurrent
    local pa ra rb
    # Two different patches at once: both must end applied.
    apply_pair "$B/basic.klp" "$B/modobj.klp"
    [ "$ra" = 0 ] || klp_fail "first apply exited $ra"
    [ "$rb" = 0 ] || klp_fail "second apply exited $rb"
    expect_applied klp_basic
    expect_applied klp_modobj
    expect_cmdline "$BASIC_LINE"
    kl disable klp_basic
    expect_rc 0
    kl disable klp_modobj
    expect_rc 0
    expect_no_livepatch

    # The same bundle twice at once: one applies, the other finds it done.
    apply_pair "$B/basic.klp" "$B/basic.klp"
    [ "$ra" = 0 ] || klp_fail "first identical apply exited $ra"
    [ "$rb" = 0 ] || klp_fail "second identical apply exited $rb"
    [ "$(grep -c '^klp_basic ' /proc/modules)" = 1 ] || klp_fail "klp_basic loaded twice?"
    cat "$T/a" "$T/b" | grep -qi "already applied" \
        || klp_fail "neither identical apply says already applied"
    expect_applied klp_basic
    kl disable klp_basic
    expect_rc 0

    # While one apply waits on a stalled transition it holds the lock:
    # --no-wait must give up at once with exit 9.
    stall_target_load
    klpctl apply --timeout 60 "$B/stall.klp" >"$T/a" 2>&1 &
    pa=$!
    klp_wait_for 10 klp_patch_present klp_stall || klp_fail "stalled apply never loaded klp_stall"
    kl apply --no-wait "$B/basic.klp"
    expect_rc 9
    klp_module_loaded klp_basic && klp_fail "--no-wait apply loaded klp_basic"
    stall_release
    wait $pa
    ra=$?
    sed 's/^/  a| /' "$T/a"
    [ "$ra" = 0 ] || klp_fail "stalled apply exited $ra after release"
    expect_applied klp_stall
    kl disable klp_stall
    expect_rc 0
    expect_gone klp_stall
    target_unload klp_stall_target
    expect_no_livepatch
    end
}

# dir_json_result FILE: the "result" of the entry for FILE (its "bundle"
# is FILE or a path ending in /FILE) in the last apply --dir --json output,
# flattened in $T/flat.
dir_json_result() {
    local idx
    idx=$(sed -n "s|^results\.\([0-9]*\)\.bundle=\(.*/\)\{0,1\}$1\$|\1|p" "$T/flat" | head -n 1)
    [ -n "$idx" ] || return 1
    sed -n "s/^results\.$idx\.result=//p" "$T/flat"
}

# check_dir_json CHANGED: the apply --dir --json output in $T/out is one
# JSON object that names every file of the directory, says "exit":0 and
# "changed":CHANGED.
check_dir_json() {
    local f r
    klp_json_flat <"$T/out" >"$T/flat" || { klp_fail "apply --dir --json printed invalid JSON"; return; }
    expect_json_changed "$1"
    r=$(klp_json_get exit <"$T/out")
    [ "$r" = 0 ] || klp_fail "--json says \"exit\":$r, expected 0"
    for f in basic.klp modobj.klp; do
        r=$(dir_json_result "$f") || { klp_fail "--json does not list $f"; continue; }
        case $1 in
            true) [ "$r" = applied ] || klp_fail "--json: $f result '$r', expected applied" ;;
            false) [ "$r" = "already applied" ] || klp_fail "--json: $f result '$r', expected already applied" ;;
        esac
    done
    for f in other_cumul_v1.klp junk.klp empty.klp truncated.klp notes.txt; do
        r=$(dir_json_result "$f") || { klp_fail "--json does not list $f"; continue; }
        case $r in
            applied | "already applied") klp_fail "--json: $f result '$r'" ;;
        esac
    done
}

case_apply_dir() {
    begin c12_apply_dir
    local f
    # Junk files and other kernels' bundles are reported but do not change
    # the exit code: every bundle for this kernel applied, so exit 0.
    kl apply --dir "$B/dir"
    expect_rc 0 "apply --dir"
    expect_applied klp_basic
    expect_applied klp_modobj
    klp_module_loaded klp_cumul_v1 && klp_fail "bundle for the other kernel was loaded"
    for f in junk.klp empty.klp truncated.klp notes.txt; do
        kl_says "$f" || klp_fail "junk file $f not reported"
    done
    kl_says "other_cumul_v1" || klp_fail "other kernel's bundle not reported"
    expect_cmdline "$BASIC_LINE"
    kl disable klp_basic
    expect_rc 0
    kl disable klp_modobj
    expect_rc 0
    expect_no_livepatch

    # The same with --json: "changed":true the first time, and a second,
    # identical run changes nothing, still with exit 0.
    kl apply --json --dir "$B/dir"
    expect_rc 0 "apply --dir --json"
    check_dir_json true
    expect_applied klp_basic
    expect_applied klp_modobj
    kl apply --json --dir "$B/dir"
    expect_rc 0 "second apply --dir --json"
    check_dir_json false
    expect_applied klp_basic
    expect_applied klp_modobj
    klp_module_loaded klp_cumul_v1 && klp_fail "bundle for the other kernel was loaded"
    expect_cmdline "$BASIC_LINE"
    kl disable klp_basic
    expect_rc 0
    kl disable klp_modobj
    expect_rc 0
    expect_no_livepatch
    end
}

case_sigkill() {
    begin c13_sigkill
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
    end
}

# Exit 8: the transition times out, and the revert (writing 0 to enabled)
# stalls too. klptest_parked sits in the original function and blocks the
# enable; klptest_hold was switched to the patched state while it slept and
# then entered the replacement, where hold_new keeps it: it blocks the
# reverse transition. klpctl must give up after max(timeout, 10 s), say the
# patch is still in transition, and never force it.
case_revert_stall() {
    begin c14_revert_stall
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
    end
}

# Exit 7 from disable: the reverse transition is blocked by klptest_hold,
# parked in the replacement; klpctl must switch the patch back on (write 1
# to enabled), wait for that to settle, and leave it applied.
case_disable_timeout() {
    begin c15_disable_timeout
    local t0 dt
    stall_target_load
    stall_release
    klp_wait_for 5 sh -c "[ \$(cat $STALL_PARAMS/left) = 1 ]" \
        || klp_fail "klptest_parked did not leave the wait function"
    kl apply "$B/stall.klp"
    expect_rc 0 "apply with no thread parked"
    expect_applied klp_stall
    hold_result_is 1
    hold_new 1
    klp_wait_for 5 hold_inside || klp_fail "klptest_hold did not enter the replacement"
    t0=$(klp_now_cs)
    kl disable --timeout 5 klp_stall
    dt=$(($(klp_now_cs) - t0))
    echo "disable returned after ${dt}cs"
    expect_rc 7
    [ "$dt" -ge 450 ] || klp_fail "disable gave up after ${dt}cs, before its 5 s timeout"
    [ "$dt" -le 1000 ] || klp_fail "disable took ${dt}cs, want about 5 s plus settling"
    kl_says "klptest_hold|[^0-9]$HOLD_PID([^0-9]|\$)" \
        || klp_fail "the blocking task (klptest_hold, pid $HOLD_PID) is not named"
    expect_says "stays enabled|switched back on"
    expect_says "unchanged"
    # Still applied and settled, and the patched function still runs.
    expect_applied klp_stall
    klp_module_loaded klp_stall || klp_fail "klp_stall not in /proc/modules"
    hold_inside || klp_fail "klptest_hold left the replacement while held"
    hold_new 0
    hold_result_is 1
    expect_applied klp_stall
    expect_not_forced
    kl disable klp_stall
    expect_rc 0 "disable after the release"
    expect_gone klp_stall
    hold_result_is 0
    target_unload klp_stall_target
    expect_no_livepatch
    end
}

case_modobj_before() {
    begin modobj_before
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
    end
}

case_modobj_after() {
    begin modobj_after
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
    end
}

# rss_apply BUNDLE NAME: apply under peak-rss, leave the figure in RSS_KB,
# and disable again.
rss_apply() {
    echo "+ peak-rss klpctl apply $1"
    peak-rss klpctl apply "$1" >"$T/out" 2>"$T/err"
    KL_RC=$?
    sed 's/^/  | /' "$T/out"
    sed 's/^/  ! /' "$T/err"
    expect_rc 0 "apply $1"
    RSS_KB=$(sed -n 's/^peak-rss: \([0-9]*\) KiB$/\1/p' "$T/err")
    [ -n "$RSS_KB" ] || klp_fail "peak-rss printed no figure"
    [ "$2" = klp_big ] && expect_cmdline "klpctl-test: big patched 5a"
    expect_applied "$2"
    kl disable "$2"
    expect_rc 0
    expect_gone "$2"
}

case_big() {
    begin big_rss
    local basic_kb size
    rss_apply "$B/basic.klp" klp_basic
    basic_kb=$RSS_KB
    size=$(wc -c <"$B/big.klp")
    rss_apply "$B/big.klp" klp_big
    echo "KLPTEST-METRIC apply_peak_rss_kb basic=$basic_kb big=$RSS_KB big_bundle_bytes=$size"
    # klpctl streams the payload (hash, then a sealed memfd), so its memory
    # must not grow with the bundle: allow 1 MiB over the small bundle.
    [ -n "$basic_kb" ] && [ -n "$RSS_KB" ] && [ "$RSS_KB" -gt $((basic_kb + 1024)) ] \
        && klp_fail "peak RSS ${RSS_KB} KiB for a 16 MiB bundle vs ${basic_kb} KiB for a small one"
    expect_no_livepatch
    end
}

# --- defects found by adversarial testing ----------------------------------

# expect_no_record NAME: klpctl left no record for NAME.
expect_no_record() {
    [ ! -e "/run/klpctl/patches/$1" ] || klp_fail "a record was left for $1"
}

disable_all() {
    local p
    for p in $(ls /sys/kernel/livepatch); do
        kl disable "$p"
        expect_rc 0 "disable $p"
    done
    expect_no_livepatch
}

# Boot-time apply --dir restores exactly the set that was applied before a
# reboot: every member of a non-cumulative stream, and the newest bundle of
# a cumulative one. (The persistent floor used to refuse ns v1 after ns v2,
# so after a reboot nothing was applied, on every boot.)
case_noncumulative_reboot() {
    begin c17_noncumulative_reboot
    local sd=/tmp/klpctl-ns-state boot before
    rm -rf "$sd"
    for boot in 1 2 3; do
        kl apply --dir "$B/nsdir" --state-dir "$sd"
        expect_rc 0 "apply --dir, boot $boot"
        expect_applied klp_basic
        expect_applied klp_modobj
        expect_applied klp_cumul_v3
        klp_module_loaded klp_cumul_v1 && klp_fail "boot $boot: superseded cumul v1 loaded"
        klp_module_loaded klp_cumul_v2 && klp_fail "boot $boot: superseded cumul v2 loaded"
        expect_cmdline "$BASIC_LINE"
        expect_file "$sd/streams/ns" "newest 2
cumulative 0"
        expect_file "$sd/streams/cumul" "newest 3
cumulative 3"
        # The same directory again, same boot: nothing to do.
        kl apply --json --dir "$B/nsdir" --state-dir "$sd"
        expect_rc 0 "second apply --dir, boot $boot"
        expect_json_changed false
        # "Reboot": the patches and /run/klpctl go, --state-dir stays.
        disable_all
        rm -rf /run/klpctl
    done
    # The persistent floor still refuses what really is a downgrade: a
    # cumulative bundle older than the one applied before the reboot.
    before=$(modules)
    kl apply --state-dir "$sd" "$B/cumul_v2.klp"
    expect_rc 5 "cumulative v2 after v3, across the reboot"
    expect_says "version 2 < applied 3"
    expect_modules_unchanged "$before"
    expect_no_record klp_cumul_v2
    rm -rf "$sd"
    end
}

# A floor file that cannot be parsed refuses every apply of its stream
# (exit 5, naming the file) instead of meaning "no floor"; only
# --allow-downgrade replaces it. Both places: /run/klpctl and --state-dir.
case_damaged_floor() {
    begin c18_damaged_floor
    local sd=/tmp/klpctl-dmg-state before v
    rm -rf "$sd" /run/klpctl/streams/cumul
    kl apply "$B/cumul_v2.klp"
    expect_rc 0 "apply v2"
    kl disable klp_cumul_v2
    expect_rc 0
    echo junk >/run/klpctl/streams/cumul
    before=$(modules)
    for v in 1 3; do
        kl apply "$B/cumul_v$v.klp"
        expect_rc 5 "v$v with a damaged per-boot floor"
        expect_says "rollback floor is damaged"
        expect_says "/run/klpctl/streams/cumul"
        expect_modules_unchanged "$before"
        expect_no_record "klp_cumul_v$v"
    done
    expect_file /run/klpctl/streams/cumul junk
    kl apply --allow-downgrade "$B/cumul_v1.klp"
    expect_rc 0 "v1 with --allow-downgrade resets the floor"
    expect_file /run/klpctl/streams/cumul "newest 1
cumulative 1"
    kl disable klp_cumul_v1
    expect_rc 0
    # In --state-dir: a symlink to a FIFO is as damaged as junk, and must
    # neither be followed nor block.
    rm -rf /run/klpctl
    mkdir -p "$sd/streams"
    mkfifo /tmp/floor-fifo
    ln -s /tmp/floor-fifo "$sd/streams/cumul"
    kl apply --state-dir "$sd" "$B/cumul_v1.klp"
    expect_rc 5 "v1 with a symlink to a FIFO as persistent floor"
    expect_says "$sd/streams/cumul"
    expect_modules_unchanged "$before"
    [ -L "$sd/streams/cumul" ] || klp_fail "the damaged floor was replaced without --allow-downgrade"
    rm -rf "$sd" /tmp/floor-fifo
    expect_no_livepatch
    end
}

# The state directory is checked before the kernel is touched: a read-only
# one, one under a missing parent, or one whose "streams" is a file is
# refused with nothing loaded. If the state still cannot be written after
# the patch went live, klpctl says so truthfully: applied, exit 10.
case_state_unwritable() {
    begin c19_state_unwritable
    local before sd pa ra
    before=$(modules)
    mkdir -p /tmp/sd-file /tmp/sd-ro
    : >/tmp/sd-file/streams
    mount -t tmpfs -o ro tmpfs /tmp/sd-ro
    for sd in /tmp/no-such-parent/state /tmp/sd-file /tmp/sd-ro; do
        kl apply --json --state-dir "$sd" "$B/basic.klp"
        expect_rc 1 "state dir $sd"
        expect_json_changed false
        expect_says "state directory|cannot create|EROFS|ENOTDIR"
        expect_modules_unchanged "$before"
        expect_no_record klp_basic
    done
    umount /tmp/sd-ro
    # Writable at the start, read-only by the time the transition is over.
    mount -t tmpfs tmpfs /tmp/sd-ro
    stall_target_load
    klpctl apply --json --state-dir /tmp/sd-ro "$B/stall.klp" >"$T/a" 2>"$T/a.err" &
    pa=$!
    klp_wait_for 10 klp_patch_present klp_stall || klp_fail "apply never loaded klp_stall"
    mount -o remount,ro /tmp/sd-ro
    stall_release
    wait $pa
    ra=$?
    sed 's/^/  a| /' "$T/a" "$T/a.err"
    [ "$ra" = 10 ] || klp_fail "apply exited $ra after its state became read-only, expected 10"
    grep -q '"result":"applied"' "$T/a" || klp_fail "JSON does not say applied"
    grep -q '"changed":true' "$T/a" || klp_fail "JSON does not say changed"
    grep -q '"warning":' "$T/a" || klp_fail "JSON has no warning"
    grep -qi "applied and live" "$T/a.err" || klp_fail "no warning on stderr"
    expect_applied klp_stall
    # Still read-only: "already applied", and still truthful about the state.
    kl apply --state-dir /tmp/sd-ro "$B/stall.klp"
    expect_rc 10 "re-apply, state still read-only"
    expect_says "already applied"
    mount -o remount,rw /tmp/sd-ro
    kl apply --state-dir /tmp/sd-ro "$B/stall.klp"
    expect_rc 0 "re-apply once the state is writable"
    expect_file /tmp/sd-ro/streams/stall "newest 1
cumulative 0"
    kl disable klp_stall
    expect_rc 0
    target_unload klp_stall_target
    umount /tmp/sd-ro
    rm -rf /tmp/sd-file /tmp/sd-ro
    expect_no_livepatch
    end
}

# A trusted bundle whose manifest name is not the module's own name is
# refused before the kernel loads it. (It used to be loaded, live, and then
# "unloaded" under the wrong name, which left it loaded.)
case_name_mismatch() {
    begin c20_name_mismatch
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
    end
}

# FIFOs and symlinks where klpctl expects its own regular files, or a
# bundle: refused at once, nothing followed, nothing loaded. And with
# standard output closed, nothing lands in the lock file.
case_special_files() {
    begin c21_special_files
    local d=/tmp/fifodir before
    rm -rf "$d"
    mkdir -p "$d"
    mkfifo "$d/x.klp"
    cp "$B/basic.klp" "$d/"
    kl apply "$d/x.klp"
    expect_rc 1 "a FIFO as the bundle"
    expect_says "not a regular file"
    kl apply --dir "$d"
    expect_rc 0 "apply --dir past a FIFO"
    expect_says "x.klp.*not a regular file"
    expect_applied klp_basic
    mkfifo /etc/klpctl/keys.d/evil.pub
    kl verify "$B/basic.klp"
    expect_rc 0 "verify with a FIFO in the keyring"
    expect_says "ignoring key file evil.pub"
    rm /etc/klpctl/keys.d/evil.pub
    # A record that is a symlink to a FIFO is damaged: never trusted, never
    # blocked on. The patch is live, so the apply is a conflict.
    mkfifo /tmp/rec-fifo
    rm /run/klpctl/patches/klp_basic
    ln -s /tmp/rec-fifo /run/klpctl/patches/klp_basic
    kl apply "$B/basic.klp"
    expect_rc 5 "apply over a damaged record"
    expect_says "without a valid klpctl record"
    kl disable klp_basic
    expect_rc 0
    [ -e /run/klpctl/patches/klp_basic ] && klp_fail "disable kept the damaged record"
    rm -f /tmp/rec-fifo
    before=$(modules)
    # The lock: a symlink is not followed, a FIFO is refused.
    rm -f /run/klpctl/lock
    ln -s /tmp/lock-target /run/klpctl/lock
    kl apply "$B/basic.klp"
    expect_rc 1 "a symlink as the lock"
    expect_says "lock.*ELOOP"
    [ -e /tmp/lock-target ] && klp_fail "the lock symlink was followed"
    rm -f /run/klpctl/lock
    mkfifo /run/klpctl/lock
    kl apply "$B/basic.klp"
    expect_rc 1 "a FIFO as the lock"
    expect_says "lock.*not a regular file"
    expect_modules_unchanged "$before"
    rm -f /run/klpctl/lock
    # Standard output closed: the lock would get fd 1 and the JSON with it.
    timeout -s KILL 60 klpctl apply --json "$B/basic.klp" >&-
    [ $? = 0 ] || klp_fail "apply with stdout closed failed"
    [ -s /run/klpctl/lock ] && klp_fail "output landed in the lock file: $(cat /run/klpctl/lock)"
    expect_applied klp_basic
    kl disable klp_basic
    expect_rc 0
    rm -rf "$d"
    expect_no_livepatch
    end
}

# A kernel without livepatch support: apply (one bundle or --dir) exits 4,
# so a boot script can tell "cannot be patched" from "nothing to do". A
# tmpfs over /sys/kernel hides /sys/kernel/livepatch for the test.
case_no_livepatch() {
    begin c22_no_livepatch
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
    end
}

# --- figures ---------------------------------------------------------------

# How many apply/disable cycles apply_time measures; it reports medians.
TIMING_RUNS=5

# timed LABEL CMD...: like kl, but under exec-time, which brackets the run
# with "klptime: LABEL start|end" lines in the kernel log. Sets KL_RC and
# EXEC_NS (CLOCK_MONOTONIC from just before fork to just after wait).
timed() {
    local label=$1
    shift
    echo "+ exec-time -k '$label' $*"
    exec-time -k "$label" "$@" >"$T/out" 2>"$T/err"
    KL_RC=$?
    sed 's/^/  | /' "$T/out"
    sed 's/^/  ! /' "$T/err"
    echo "  = exit $KL_RC"
    EXEC_NS=$(sed -n 's/^exec-time: \([0-9]*\) ns$/\1/p' "$T/err")
    [ -n "$EXEC_NS" ] || klp_fail "exec-time printed no figure for $label"
}

# timing_report RUNS < "op run ns" lines followed by the case's kernel log:
# per run and median, in microseconds, of
#   klpctl      exec-time's CLOCK_MONOTONIC figure, fork to wait
#   to_complete klptime start -> livepatch "patching complete"
#   transition  "starting patching transition" -> "patching complete"
#   enable      "enabling patch" -> "patching complete" (apply only: adds
#               klp_init_transition and the ftrace set-up before the start)
#   after       "patching complete" -> klptime end (klpctl noticing the
#               end, recording, exiting)
#   verify      exec-time's figure for `klpctl verify` of the same bundle:
#               klpctl's own checks, without the kernel (apply's metric)
# all kernel figures from the kernel log's own timestamps. Prints one line
# per run, then KLPTEST-METRIC lines; fails when a run misses a figure.
timing_report() {
    awk -v runs="$1" -v patch=klp_basic '
    function us(line,    t) {
        t = line
        sub(/^\[ */, "", t); sub(/\].*/, "", t)
        split(t, p, ".")
        # busybox awk reads "000123" as octal: drop the leading zeros.
        sub(/^0+/, "", p[2])
        return p[1] * 1000000 + p[2]
    }
    function median(op, key,    n, i, j, v, a) {
        n = 0
        for (i = 1; i <= runs; i++)
            if ((op, i, key) in val) a[++n] = val[op, i, key]
        if (n < runs) return ""
        for (i = 2; i <= n; i++) {
            v = a[i]
            for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]
            a[j + 1] = v
        }
        return n % 2 ? a[(n + 1) / 2] : int((a[n / 2] + a[n / 2 + 1]) / 2)
    }
    # First the exec-time figures, "op run ns".
    NF == 3 && $1 ~ /^(verify|apply|disable)$/ { val[$1, $2, "klpctl"] = int($3 / 1000); next }
    # The timestamp may hold spaces ("[    9.5]"), so fields are counted
    # from the marker on.
    /klptime: (apply|disable) [0-9]+ (start|end)$/ {
        t = $0; sub(/.*klptime: /, "", t); split(t, w, " ")
        if (w[3] == "start") { op = w[1]; run = w[2]; t0[op, run] = us($0) }
        else { t1[w[1], w[2]] = us($0); op = "" }
        next
    }
    op == "" { next }
    index($0, "enabling patch '"'"'" patch "'"'"'") { ten[op, run] = us($0) }
    index($0, "'"'"'" patch "'"'"': starting " (op == "apply" ? "" : "un") "patching transition") { tbeg[op, run] = us($0) }
    index($0, "'"'"'" patch "'"'"': " (op == "apply" ? "" : "un") "patching complete") { tdone[op, run] = us($0) }
    END {
        bad = 0
        for (o = 1; o <= 2; o++) {
            op = o == 1 ? "apply" : "disable"
            for (i = 1; i <= runs; i++) {
                if (!((op, i) in t0) || !((op, i) in t1) || !((op, i) in tbeg) || !((op, i) in tdone) \
                    || (op == "apply" && !((op, i) in ten)) || !((op, i, "klpctl") in val)) {
                    print "timing: " op " " i ": missing figures" \
                        " (exec-time " ((op, i, "klpctl") in val) ", kernel log: start " ((op, i) in t0) \
                        ", enabling " ((op, i) in ten) ", starting " ((op, i) in tbeg) \
                        ", complete " ((op, i) in tdone) ", end " ((op, i) in t1) ")"
                    bad = 1
                    continue
                }
                val[op, i, "to_complete"] = tdone[op, i] - t0[op, i]
                val[op, i, "transition"] = tdone[op, i] - tbeg[op, i]
                if (op == "apply") val[op, i, "enable"] = tdone[op, i] - ten[op, i]
                val[op, i, "after"] = t1[op, i] - tdone[op, i]
                printf "timing: %s %d: klpctl %d us, start->complete %d us, transition %d us, %scomplete->exit %d us\n", \
                    op, i, val[op, i, "klpctl"], val[op, i, "to_complete"], val[op, i, "transition"], \
                    op == "apply" ? "enable->complete " val[op, i, "enable"] " us, " : "", val[op, i, "after"]
            }
        }
        if (bad) exit 1
        k = median("apply", "klpctl")
        printf "KLPTEST-METRIC apply_time_us runs=%d klpctl=%s to_complete=%s transition=%s enable=%s after=%s verify=%s vs_1s_poll=%.4f\n", \
            runs, k, median("apply", "to_complete"), median("apply", "transition"), \
            median("apply", "enable"), median("apply", "after"), median("verify", "klpctl"), k / 1000000
        printf "KLPTEST-METRIC disable_time_us runs=%d klpctl=%s to_complete=%s transition=%s after=%s\n", \
            runs, median("disable", "klpctl"), median("disable", "to_complete"), \
            median("disable", "transition"), median("disable", "after")
    }'
}

# apply_time: case 1 (the basic patch) timed precisely, TIMING_RUNS times,
# next to the kernel's own transition time from its log. Figures only: no
# time limit is asserted, the machines are too noisy for that.
case_apply_time() {
    begin apply_time
    local i
    : >"$T/times"
    for i in $(seq "$TIMING_RUNS"); do
        # The same checks as apply's first half (parse, signatures, digest),
        # without the kernel: what klpctl itself costs before finit_module.
        timed "verify $i" klpctl verify "$B/basic.klp"
        expect_rc 0 "verify run $i"
        echo "verify $i $EXEC_NS" >>"$T/times"
        timed "apply $i" klpctl apply "$B/basic.klp"
        expect_rc 0 "apply run $i"
        echo "apply $i $EXEC_NS" >>"$T/times"
        expect_cmdline "$BASIC_LINE"
        expect_file /sys/kernel/livepatch/klp_basic/transition 0
        timed "disable $i" klpctl disable klp_basic
        expect_rc 0 "disable run $i"
        echo "disable $i $EXEC_NS" >>"$T/times"
        expect_cmdline "$ORIG_CMDLINE"
        klp_patch_gone klp_basic || klp_fail "klp_basic still in sysfs after disable run $i"
    done
    # The raw events behind the figures, for anyone who doubts them.
    klp_case_dmesg | grep -E 'klptime: |livepatch: ' | sed 's/^/  k| /'
    { cat "$T/times"; klp_case_dmesg; } | timing_report "$TIMING_RUNS" >"$T/timing" \
        || klp_fail "$(grep 'missing figures' "$T/timing" | head -n 1)"
    cat "$T/timing"
    expect_no_livepatch
    end
}

case_final() {
    begin final_clean
    expect_no_livepatch
    local left
    left=$(modules)
    [ -z "$left" ] || klp_fail "modules left loaded: $left"
    end
}

if [ "$SCENARIO" = sigenforce ]; then
    case_sig_enforce
    case_final
    exit 0
fi

case_apply
case_reapply
case_rejected
case_wrong_kernel
case_disable
case_replace_chain
case_downgrade
case_persistent_floor
case_stall_timeout
case_badcb
case_not_livepatch
case_concurrent
case_apply_dir
case_sigkill
case_revert_stall
case_disable_timeout
case_modobj_before
case_modobj_after
case_noncumulative_reboot
case_damaged_floor
case_state_unwritable
case_name_mismatch
case_special_files
case_no_livepatch
case_apply_time
case_big
case_final
