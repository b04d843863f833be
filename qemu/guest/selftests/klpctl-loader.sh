# klpctl as the loader of the kernel's own livepatch selftests (bash).
#
# run.sh appends this file to a copy of the upstream functions.sh, so these
# definitions replace the upstream helpers of the same name when a scenario
# script sources it. Our own code; nothing of the kernel's is copied here.
#
# What changes:
# - every livepatch is loaded, waited for, disabled and unloaded by klpctl
#   (klpctl apply BUNDLE, klpctl disable NAME); plain target modules still
#   load with insmod;
# - helpers that need tools busybox lacks (procps sysctl, GNU stat, date,
#   mktemp, comm, diff -p) are rewritten with what the guest has;
# - check_result compares the kernel log with the expectation after the
#   adaptations listed in qemu/README.md ("The kernel's livepatch
#   selftests"), each of which is tagged on the case's result line.
#
# Result lines on stdout, one per case:
#   KLPTEST-SELFTEST <script> <n> ok|FAIL rules=<tags> <test name>

ST=/klptest/st
ST_BUNDLES=$ST/bundles
ST_OUT=/tmp/st-out
ST_SCRIPT=${ST_SCRIPT:-$(basename "$0" .sh)}
ST_N=0
mkdir -p "$ST_OUT"

# klpctl's own commands are bounded like every klpctl in the cases: a hang
# fails the scenario instead of the whole boot.
st_klpctl() {
    timeout -s KILL 200 klpctl "$@"
}

function is_livepatch_mod() {
    grep -qx "$1" "$ST/livepatches"
}

# 6.1 asks modprobe whether the module exists; here it is a bundle or a
# plain .ko in test_modules/.
function assert_mod() {
    is_livepatch_mod "$1" || [ -f "test_modules/$1.ko" ]
}

# 6.10+ checks for a kernel tree to build the modules in; they were built
# on the host.
function has_kdir() {
    :
}

# Plain target modules: insmod from test_modules/ (the guest has no
# modules.dep for modprobe), with insmod1, which calls finit_module once as
# kmod's insmod does (busybox's insmod retries a refused module with
# init_module, and the kernel would log the refusal twice).
function __load_mod() {
    local mod="$1"; shift
    local msg="% insmod test_modules/$mod.ko $*"
    log "${msg%% }"
    ret=$(insmod1 "test_modules/$mod.ko" "$@" 2>&1)
    if [[ "$ret" != "" ]]; then
        die "$ret"
    fi
    loop_until '[[ -e "/sys/module/$mod" ]]' ||
        die "failed to load module $mod"
}

# st_bundle MOD [PARAM=VALUE...]: the bundle mkselftests.sh packed for this
# parameter set.
st_bundle() {
    local mod="$1"; shift
    local b="$ST_BUNDLES/$mod.klp"
    if [ $# -gt 0 ]; then
        local IFS=,
        b="$ST_BUNDLES/$mod@$*.klp"
    fi
    [ -f "$b" ] || die "no bundle for $mod${1:+ with $*}: klpctl loads no module parameters, and mkselftests.sh packed none for these"
    echo "$b"
}

# errno name of a loader's error text (kmod's insmod/modprobe, busybox
# insmod) or of klpctl's output, so the expectation compares the errno.
st_errno_of() {
    case "$1" in
        *"Invalid parameters"* | *"Invalid argument"*) echo EINVAL ;;
        *"No such device"*) echo ENODEV ;;
        *"Device or resource busy"*) echo EBUSY ;;
        *"Operation not permitted"*) echo EPERM ;;
        *"File exists"*) echo EEXIST ;;
        *"Invalid module format"* | *"Exec format error"*) echo ENOEXEC ;;
        *) grep -oE '\bE[A-Z]{2,}\b' <<<"$1" | grep -vE '^(ERROR|ELF)$' | head -n 1 ;;
    esac
}

function load_lp_nowait() {
    local mod="$1"; shift
    is_livepatch_mod "$mod" || die "module $mod is not a livepatch"
    local b
    b=$(st_bundle "$mod" "$@") || exit 1
    # klpctl never leaves a patch in transition: it waits, and after
    # --timeout reverts. So "do not wait" is an apply in the background
    # whose revert a later disable_lp waits for (see disable_lp). 10 s: long
    # enough for the steps the scenario takes meanwhile, and below the 15 s
    # after which the kernel signals the remaining tasks and says so in the
    # log, which upstream's quick disable never sees.
    log "% klpctl apply ${b##*/}"
    st_klpctl apply --timeout 10 "$b" >"$ST_OUT/$mod.nowait.out" 2>&1 &
    echo $! >"$ST_OUT/$mod.nowait.pid"
    loop_until '[[ -e "/sys/kernel/livepatch/$mod" ]]' ||
        die "failed to load module $mod (sysfs)"
}

function load_lp() {
    local mod="$1"; shift
    is_livepatch_mod "$mod" || die "module $mod is not a livepatch"
    local b
    b=$(st_bundle "$mod" "$@") || exit 1
    log "% klpctl apply ${b##*/}"
    st_klpctl apply "$b" >"$ST_OUT/out" 2>&1
    local rc=$?
    sed 's/^/  klpctl| /' "$ST_OUT/out"
    [ "$rc" = 0 ] || die "klpctl apply ${b##*/} exited $rc"
    # klpctl returned after the transition; check it as upstream does.
    grep -q '^0$' "/sys/kernel/livepatch/$mod/transition" ||
        die "klpctl apply returned before the transition finished"
}

function load_failing_mod() {
    local mod="$1"; shift
    local out rc
    if is_livepatch_mod "$mod"; then
        local b
        b=$(st_bundle "$mod" "$@") || exit 1
        log "% klpctl apply ${b##*/}"
        out=$(st_klpctl apply "$b" 2>&1)
        rc=$?
        echo "$out" | sed 's/^/  klpctl| /'
        [ "$rc" = 6 ] || die "$mod: klpctl apply exited $rc, expected 6 (the kernel refused it)"
    else
        local msg="% insmod test_modules/$mod.ko $*"
        log "${msg%% }"
        out=$(insmod1 "test_modules/$mod.ko" "$@" 2>&1)
        rc=$?
        [ "$rc" != 0 ] || die "$mod unexpectedly loaded"
    fi
    log "load refused: $mod: $(st_errno_of "$out")"
}

# disable_lp: klpctl disable writes 0 to enabled, waits for the transition,
# for the sysfs directory to vanish and for refcnt 0, then unloads.
function disable_lp() {
    local mod="$1"
    log "% klpctl disable $mod"
    local pidf="$ST_OUT/$mod.nowait.pid"
    if [ -f "$pidf" ]; then
        # An apply started by load_lp_nowait still holds klpctl's lock;
        # this disable waits for it. That apply times out on the stalled
        # transition and reverts it (writing 0 to enabled, as upstream's
        # disable does): exit 7, and this disable finds nothing to do.
        local pid
        pid=$(cat "$pidf")
        rm -f "$pidf"
        st_klpctl disable "$mod" >"$ST_OUT/out" 2>&1 || { cat "$ST_OUT/out"; die "klpctl disable $mod failed"; }
        wait "$pid"
        local arc=$?
        sed 's/^/  klpctl apply| /' "$ST_OUT/$mod.nowait.out"
        sed 's/^/  klpctl| /' "$ST_OUT/out"
        if [ "$arc" != 0 ] && [ "$arc" != 7 ]; then
            die "the background klpctl apply of $mod exited $arc, expected 7 (reverted) or 0"
        fi
    else
        st_klpctl disable "$mod" >"$ST_OUT/out" 2>&1
        local rc=$?
        sed 's/^/  klpctl| /' "$ST_OUT/out"
        [ "$rc" = 0 ] || die "klpctl disable $mod exited $rc"
    fi
    [[ ! -e "/sys/kernel/livepatch/$mod" ]] || die "failed to disable livepatch $mod"
}

# unload_lp: klpctl already removed the module, in disable (above) or, for
# a patch that an atomic-replace patch replaced, in the replacing apply.
# A module still here is a leftover klpctl did not remove: let klpctl
# remove it, visibly (the kernel log then differs from the expectation).
function unload_lp() {
    local mod="$1"
    if [[ -e "/sys/module/$mod" ]]; then
        log "% klpctl disable $mod"
        st_klpctl disable "$mod" || die "klpctl disable $mod (leftover module) failed"
    fi
    [[ ! -e "/sys/module/$mod" ]] || die "failed to unload module $mod (/sys/module)"
}

# No procps sysctl in the guest: read and write /proc/sys, and log failures
# in sysctl's words, as the expectations quote them.
# 7.x's functions.sh also saves and restores the kprobes switch and the
# function tracer (SYSFS_KPROBES_DIR, SYSFS_TRACING_DIR); so do these when
# it defines them.
function push_config() {
    DYNAMIC_DEBUG=$(grep '^kernel/livepatch' /sys/kernel/debug/dynamic_debug/control |
        awk -F'[: ]' '{print "file " $1 " line " $2 " " $4}')
    FTRACE_ENABLED=$(cat /proc/sys/kernel/ftrace_enabled)
    if [[ -n "${SYSFS_TRACING_DIR:-}" ]]; then
        KPROBE_ENABLED=$(cat "$SYSFS_KPROBES_DIR/enabled")
        TRACING_ON=$(cat "$SYSFS_TRACING_DIR/tracing_on")
        CURRENT_TRACER=$(cat "$SYSFS_TRACING_DIR/current_tracer")
        FTRACE_FILTER=$(cat "$SYSFS_TRACING_DIR/set_ftrace_filter")
    fi
}

function pop_config() {
    if [[ -n "$DYNAMIC_DEBUG" ]]; then
        echo -n "$DYNAMIC_DEBUG" >/sys/kernel/debug/dynamic_debug/control
    fi
    if [[ -n "$FTRACE_ENABLED" ]]; then
        echo "$FTRACE_ENABLED" >/proc/sys/kernel/ftrace_enabled 2>/dev/null
    fi
    if [[ -n "${SYSFS_TRACING_DIR:-}" ]]; then
        [[ -n "${KPROBE_ENABLED:-}" ]] && echo "$KPROBE_ENABLED" >"$SYSFS_KPROBES_DIR/enabled"
        [[ -n "${TRACING_ON:-}" ]] && echo "$TRACING_ON" >"$SYSFS_TRACING_DIR/tracing_on"
        [[ -n "${CURRENT_TRACER:-}" ]] && echo "$CURRENT_TRACER" >"$SYSFS_TRACING_DIR/current_tracer"
        [[ -n "${FTRACE_FILTER:-}" ]] &&
            echo "$FTRACE_FILTER" | sed -e '/#### all functions enabled ####/d' \
                >"$SYSFS_TRACING_DIR/set_ftrace_filter"
    fi
    return 0
}

# 7.x: whether kernel.ftrace_enabled=0 still takes (newer kernels refuse it
# with EOPNOTSUPP), probed through /proc/sys.
function ftrace_disable_supported() {
    local orig result
    orig=$(cat /proc/sys/kernel/ftrace_enabled)
    (echo 0 >/proc/sys/kernel/ftrace_enabled) 2>/dev/null
    result=$(cat /proc/sys/kernel/ftrace_enabled)
    (echo "$orig" >/proc/sys/kernel/ftrace_enabled) 2>/dev/null
    [[ "$result" == "0" ]]
}

function set_ftrace_enabled() {
    local can_fail=0
    if [[ "$1" == "--fail" ]]; then
        can_fail=1
        shift
    fi
    local err
    err=$( (echo "$1" >/proc/sys/kernel/ftrace_enabled) 2>&1)
    local result
    result=$(cat /proc/sys/kernel/ftrace_enabled)
    if [[ "$result" != "$1" ]]; then
        if [[ $can_fail -eq 1 ]]; then
            echo "livepatch: sysctl: setting key \"kernel.ftrace_enabled\": ${err##*: }" >/dev/kmsg
            return
        fi
        die "failed to set kernel.ftrace_enabled = $1"
    fi
    echo "livepatch: kernel.ftrace_enabled = $result" >/dev/kmsg
}

function cleanup() {
    pop_config
}

function check_sysfs_rights() {
    # KLP_SYSFS_DIR up to 6.x, SYSFS_KLP_DIR from 7.x.
    local path="${SYSFS_KLP_DIR:-$KLP_SYSFS_DIR}/$1/$2"
    local rights
    rights=$(stat -c '%A' "$path")
    [ "$rights" = "$3" ] || die "Unexpected access rights of $path: $3 vs. $rights"
}

# start_test: a canary of our own in the kernel log marks where the case's
# log begins.
ST_CANARY=
ST_TEST=
function start_test {
    ST_N=$((ST_N + 1))
    ST_TEST=$1
    ST_CANARY="klptest: selftest $ST_SCRIPT $ST_N start"
    echo "$ST_CANARY" >/dev/kmsg
    echo "TEST: $1"
    log "===== TEST: $1 ====="
}

# st_adapt EXPECTED: the expectation with klpctl's differences applied;
# the tags of the rules used go to $ST_OUT/rules.
st_adapt() {
    local line mod args re_echo='^% echo 0 > /sys/kernel/livepatch/([^/]+)/enabled$'
    local re_refused="^(insmod|modprobe): ERROR: could not insert (module test_modules/([^ ]+)\\.ko|'([^']+)'): (.+)\$"
    local -A used=()
    while IFS= read -r line; do
        if [[ "$line" =~ ^%\ (insmod\ test_modules/([^ ]+)\.ko|modprobe\ ([^ ]+))(\ (.*))?$ ]]; then
            mod=${BASH_REMATCH[2]}${BASH_REMATCH[3]}
            args=${BASH_REMATCH[5]}
            if is_livepatch_mod "$mod"; then
                used[apply]=1
                [ -n "$args" ] && { used[params]=1; args=@${args// /,}; }
                echo "% klpctl apply $mod$args.klp"
                continue
            fi
            if [ -n "${BASH_REMATCH[3]}" ]; then
                used[insmod]=1
                echo "% insmod test_modules/$mod.ko${args:+ $args}"
                continue
            fi
        elif [[ "$line" =~ $re_echo ]]; then
            used[disable]=1
            echo "% klpctl disable ${BASH_REMATCH[1]}"
            continue
        elif [[ "$line" =~ ^%\ rmmod\ ([^ ]+)$ ]] && is_livepatch_mod "${BASH_REMATCH[1]}"; then
            used[rmmod]=1
            continue
        elif [[ "$line" =~ $re_refused ]]; then
            used[refused]=1
            echo "load refused: ${BASH_REMATCH[3]}${BASH_REMATCH[4]}: $(st_errno_of "${BASH_REMATCH[5]}")"
            continue
        fi
        echo "$line"
    done <<<"$1"
    local k tags=
    for k in apply params disable rmmod refused insmod; do
        [ -n "${used[$k]:-}" ] && tags=$tags${tags:+,}$k
    done
    echo "${tags:-none}" >"$ST_OUT/rules"
}

# The kernel log since the case's canary, filtered as upstream filters it
# (7.x also strips a printk caller id, "[    T123] "), without klpctl's own
# audit lines ("klpctl: applied ...").
st_result() {
    dmesg | awk -v c="$ST_CANARY" 'p; index($0, c) { p = 1 }' |
        grep -e 'livepatch:' -e 'test_klp' |
        grep -v '\(tainting\|taints\) kernel' |
        sed 's/^\[[ 0-9.]*\] //' |
        sed 's/^\[[ ]*[CT][0-9]*\] //' |
        grep -v '^klpctl: '
}

function check_result {
    local expect result rules
    expect=$(st_adapt "$*")
    rules=$(cat "$ST_OUT/rules")
    result=$(st_result)
    if [[ "$expect" == "$result" ]]; then
        echo "ok"
        echo "KLPTEST-SELFTEST $ST_SCRIPT $ST_N ok rules=$rules $ST_TEST"
    else
        echo "not ok"
        printf '%s\n' "$expect" >"$ST_OUT/expected"
        printf '%s\n' "$result" >"$ST_OUT/result"
        diff -u "$ST_OUT/expected" "$ST_OUT/result"
        echo "KLPTEST-SELFTEST $ST_SCRIPT $ST_N FAIL rules=$rules $ST_TEST"
        die "livepatch kselftest(s) failed"
    fi
}
