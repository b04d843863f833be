#!/bin/sh
# Bring-up scenario: proves each test module does what it should on this
# kernel, using busybox insmod/rmmod and sysfs directly (no klpctl). The real
# suite (guest/cases/) never loads livepatches this way.
. /klptest/lib.sh
M=/klptest/modules
ORIG_CMDLINE=$(cat /proc/cmdline)

expect_file() { # FILE EXPECTED
    local got
    got=$(cat "$1" 2>&1)
    [ "$got" = "$2" ] || klp_fail "$1 reads '$got', expected '$2'"
}

# Disable a livepatch through sysfs and unload it, the way the kernel
# selftests do: wait for the sysfs dir to vanish and the refcount to drop.
unpatch() {
    echo 0 >"/sys/kernel/livepatch/$1/enabled" || klp_fail "disable $1"
    klp_wait_for 15 klp_patch_gone "$1" || klp_fail "$1 still in sysfs"
    klp_wait_for 15 sh -c "[ \$(cat /sys/module/$1/refcnt) = 0 ]" \
        || klp_fail "$1 refcnt stuck"
    rmmod "$1" || klp_fail "rmmod $1"
}

transition_done() {
    [ "$(cat "/sys/kernel/livepatch/$1/transition")" = 0 ]
}

klp_case_begin smoke_basic
insmod $M/klp_basic.ko || klp_fail "insmod klp_basic"
klp_wait_for 15 transition_done klp_basic || klp_fail "transition stuck"
expect_file /proc/cmdline "klpctl-test: basic patched"
expect_file /sys/kernel/livepatch/klp_basic/enabled 1
grep -q '^klp_basic ' /proc/modules || klp_fail "not in /proc/modules"
echo "tainted=$(cat /proc/sys/kernel/tainted)"
unpatch klp_basic
expect_file /proc/cmdline "$ORIG_CMDLINE"
klp_module_loaded klp_basic && klp_fail "still loaded"
klp_case_end

klp_case_begin smoke_cumul
for v in 1 2 3; do
    insmod $M/klp_cumul_v$v.ko || klp_fail "insmod v$v"
    klp_wait_for 15 transition_done klp_cumul_v$v || klp_fail "v$v stuck"
    klp_wait_for 5 klp_patch_gone klp_cumul_v$((v - 1)) || klp_fail "v$((v - 1)) not replaced"
    expect_file /proc/cmdline "klpctl-test: cumulative v$v"
done
ls /sys/kernel/livepatch
[ "$(ls /sys/kernel/livepatch)" = klp_cumul_v3 ] || klp_fail "sysfs holds more than v3"
# Replaced patches stay loaded until someone removes them.
klp_module_loaded klp_cumul_v1 || klp_fail "v1 module already gone"
rmmod klp_cumul_v1 klp_cumul_v2 || klp_fail "rmmod v1 v2"
[ -f /sys/kernel/livepatch/klp_cumul_v3/replace ] && expect_file /sys/kernel/livepatch/klp_cumul_v3/replace 1
unpatch klp_cumul_v3
expect_file /proc/cmdline "$ORIG_CMDLINE"
klp_case_end

klp_case_begin smoke_stall
insmod $M/klp_stall_target.ko || klp_fail "insmod target"
klp_wait_for 5 sh -c 'dmesg | grep -q "thread parked"' || klp_fail "thread did not park"
pid=$(pidof klptest_parked)
echo "stall thread pid=$pid"
t0=$(klp_now_cs)
insmod $M/klp_stall.ko || klp_fail "insmod klp_stall"
echo "insmod returned after $(( $(klp_now_cs) - t0 ))cs"
sleep 3
expect_file /sys/kernel/livepatch/klp_stall/transition 1
[ -n "$pid" ] && { echo "patch_state=$(cat /proc/$pid/patch_state)"; cat /proc/$pid/stack; }
[ -n "$pid" ] && cat /proc/$pid/stack | grep -q klp_stall_target_wait || klp_fail "wait function not on stack"
echo 1 >/sys/module/klp_stall_target/parameters/release
klp_wait_for 5 transition_done klp_stall || klp_fail "transition did not finish after release"
expect_file /sys/module/klp_stall_target/parameters/left 1
expect_file /sys/module/klp_stall_target/parameters/result 0
unpatch klp_stall
rmmod klp_stall_target || klp_fail "rmmod target"
klp_case_end

klp_case_begin smoke_stall_revert
# Reverse a stalled transition by writing enabled=0, as klpctl does on timeout.
insmod $M/klp_stall_target.ko || klp_fail "insmod target"
klp_wait_for 5 sh -c '[ $(dmesg | grep -c "thread parked") -ge 2 ]' || klp_fail "thread did not park"
insmod $M/klp_stall.ko || klp_fail "insmod klp_stall"
sleep 1
expect_file /sys/kernel/livepatch/klp_stall/transition 1
t0=$(klp_now_cs)
echo 0 >/sys/kernel/livepatch/klp_stall/enabled || klp_fail "reverse"
klp_wait_for 10 klp_patch_gone klp_stall || klp_fail "reverse did not finish"
echo "reverse took $(( $(klp_now_cs) - t0 ))cs"
klp_wait_for 5 sh -c '[ $(cat /sys/module/klp_stall/refcnt) = 0 ]'
rmmod klp_stall || klp_fail "rmmod klp_stall"
echo 1 >/sys/module/klp_stall_target/parameters/release
rmmod klp_stall_target || klp_fail "rmmod target"
klp_case_end

klp_case_begin smoke_badcb
out=$(insmod $M/klp_badcb.ko 2>&1) && klp_fail "insmod klp_badcb succeeded"
echo "insmod said: $out"
echo "$out" | grep -q "No such device" || klp_fail "unexpected error: $out"
klp_module_loaded klp_badcb && klp_fail "klp_badcb left loaded"
klp_patch_present klp_badcb && klp_fail "klp_badcb left in sysfs"
expect_file /proc/cmdline "$ORIG_CMDLINE"
klp_case_end

klp_case_begin smoke_modobj_before
insmod $M/klp_modobj.ko || klp_fail "insmod modobj"
klp_wait_for 15 transition_done klp_modobj || klp_fail "stuck"
insmod $M/klp_target.ko || klp_fail "insmod target"
expect_file /proc/klp_target "klp_target: patched"
[ -f /sys/kernel/livepatch/klp_modobj/klp_target/patched ] \
    && expect_file /sys/kernel/livepatch/klp_modobj/klp_target/patched 1
unpatch klp_modobj
expect_file /proc/klp_target "klp_target: original"
rmmod klp_target || klp_fail "rmmod target"
klp_case_end

klp_case_begin smoke_modobj_after
insmod $M/klp_target.ko || klp_fail "insmod target"
expect_file /proc/klp_target "klp_target: original"
insmod $M/klp_modobj.ko || klp_fail "insmod modobj"
klp_wait_for 15 transition_done klp_modobj || klp_fail "stuck"
expect_file /proc/klp_target "klp_target: patched"
rmmod klp_target || klp_fail "rmmod target while patched"
expect_file /sys/kernel/livepatch/klp_modobj/enabled 1
unpatch klp_modobj
klp_case_end

klp_case_begin smoke_big
ls -l $M/klp_big.ko
insmod $M/klp_big.ko || klp_fail "insmod klp_big"
klp_wait_for 15 transition_done klp_big || klp_fail "stuck"
expect_file /proc/cmdline "klpctl-test: big patched 5a"
unpatch klp_big
klp_case_end

echo "--- remaining modules:"
cat /proc/modules
[ -z "$(cat /proc/modules)" ] || exit 1
