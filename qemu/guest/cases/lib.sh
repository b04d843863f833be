# Helpers shared by the kernel test cases in this directory (busybox sh).
# Sourced once by run.sh before the first case, so every case sees the same
# variables; a helper only one case uses lives in that case's file.
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

# boot_param NAME [DEFAULT]: klptest.NAME= from the kernel command line as
# qemu/run.sh set it (vcpus, accel, load_cycles, smp_why, cases). Read from
# ORIG_CMDLINE: a patch may have replaced /proc/cmdline since.
boot_param() {
    local v
    v=$(echo "$ORIG_CMDLINE" | tr ' ' '\n' | sed -n "s/^klptest\.$1=//p" | head -n 1)
    echo "${v:-$2}"
}

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

# --- state a case needs ---------------------------------------------------

# ensure_applied NAME BUNDLE: for a case's setup_case, when the case needs
# patch NAME live and an earlier case applies it in the full sequence.
# Applies BUNDLE unless NAME is enabled already, so the case also runs
# alone (klptest.cases); in the full sequence it does nothing. After a
# setup that applied something the case's canary is written again, so
# checks on the case's kernel log see only what run_case did.
ensure_applied() {
    [ "$(cat "/sys/kernel/livepatch/$1/enabled" 2>/dev/null)" = 1 ] && return 0
    echo "setup: $1 is not live, applying $2"
    kl apply "$2"
    expect_rc 0 "setup: apply $2"
    klp_patch_present "$1" || klp_fail "setup: $2 did not make $1 live"
    klp_case_canary
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

# kernel_at_least MAJOR MINOR: the running kernel is MAJOR.MINOR or newer.
kernel_at_least() {
    local r maj min
    r=$(uname -r)
    maj=${r%%.*}
    r=${r#*.}
    min=${r%%[!0-9]*}
    [ "$maj" -gt "$1" ] || { [ "$maj" = "$1" ] && [ "$min" -ge "$2" ]; }
}

# expect_stack_order NAME [N]: status --json reports the patch's stack_order
# as the number in /sys/kernel/livepatch/NAME/stack_order (and N, if given),
# or null on a kernel without that file. From 6.14 the kernel has it, so a
# kernel that new without it fails rather than passing as "absent".
expect_stack_order() {
    local f=/sys/kernel/livepatch/$1/stack_order got
    status_json
    got=$(status_field "$1" stack_order) \
        || { klp_fail "status --json has no stack_order for $1"; return; }
    if [ -e "$f" ]; then
        case $got in
            '' | *[!0-9]*) klp_fail "status --json: $1 stack_order is '$got', expected a number" ;;
            *)
                [ "$got" = "$(cat "$f")" ] \
                    || klp_fail "status --json: $1 stack_order $got, sysfs says $(cat "$f")"
                [ -z "$2" ] || [ "$got" = "$2" ] \
                    || klp_fail "status --json: $1 stack_order $got, expected $2"
                ;;
        esac
    else
        kernel_at_least 6 14 && klp_fail "$(uname -r) has no $f (every kernel from 6.14 has it)"
        [ "$got" = null ] || klp_fail "status --json: $1 stack_order is '$got' without $f, expected null"
    fi
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

# expect_no_record NAME: klpctl left no record for NAME.
expect_no_record() {
    [ ! -e "/run/klpctl/patches/$1" ] || klp_fail "a record was left for $1"
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

# --- the load scenario's helpers (c40_diy_baseline, c41_load) -------------

# ms_stats < one figure in ns per line: "<median> <max>" in ms, one decimal.
ms_stats() {
    sort -n | awk '{ a[NR] = $1 }
        END {
            if (NR == 0) { print "- -"; exit }
            m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
            printf "%.1f %.1f\n", m / 1e6, a[NR] / 1e6
        }'
}
