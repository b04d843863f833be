# Helpers shared by the guest scripts (busybox sh). Sourced.
#
# Output protocol, one line each on the console:
#   KLPTEST <case> PASS
#   KLPTEST <case> FAIL <reason>
# Before each case a canary goes to /dev/kmsg so the case's kernel log can be
# cut out of dmesg; on failure that slice is printed.

KLP_CASE=
KLP_CASE_FAILED=0

klp_case_begin() {
    KLP_CASE=$1
    KLP_CASE_FAILED=0
    echo "klptest: case $KLP_CASE start" >/dev/kmsg
    echo "--- case $KLP_CASE"
}

# The kernel log since this case's canary.
klp_case_dmesg() {
    dmesg | sed -n "/klptest: case $KLP_CASE start/,\$p"
}

klp_fail() {
    [ "$KLP_CASE_FAILED" = 1 ] && return 0
    KLP_CASE_FAILED=1
    echo "KLPTEST $KLP_CASE FAIL $*"
    echo "--- kernel log of case $KLP_CASE:"
    klp_case_dmesg
    echo "--- end of kernel log"
}

klp_pass() {
    [ "$KLP_CASE_FAILED" = 1 ] && return 0
    echo "KLPTEST $KLP_CASE PASS"
}

# klp_case_end: PASS unless a check already failed.
klp_case_end() {
    klp_pass
}

# Seconds since boot with centisecond resolution, as an integer of 1/100 s.
klp_now_cs() {
    local up
    read -r up _ </proc/uptime
    echo "${up%.*}${up#*.}" | sed 's/^0*//;s/^$/0/'
}

# klp_wait_for TIMEOUT_S CMD...: poll every 0.1 s until CMD succeeds.
klp_wait_for() {
    local limit=$(($1 * 10)) i=0
    shift
    while ! "$@"; do
        i=$((i + 1))
        [ "$i" -ge "$limit" ] && return 1
        usleep 100000
    done
    return 0
}

klp_module_loaded() {
    grep -q "^$1 " /proc/modules
}

klp_patch_present() {
    [ -d "/sys/kernel/livepatch/$1" ]
}

klp_patch_gone() {
    [ ! -d "/sys/kernel/livepatch/$1" ]
}
