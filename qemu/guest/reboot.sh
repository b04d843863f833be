#!/bin/sh
# The guest half of qemu/reboot.sh: one boot of the crash-loop guard's
# multi-boot scenario. The host boots the same persistent disk (/dev/vda,
# ext4) again and again, naming this boot's step on the kernel command line
# (klptest.step=NAME); the disk holds the state directory and the bundle
# directory, at the paths dist/sysvinit/klpctl uses by default. Each boot
# runs the shipped init script exactly as a device would (start, then stop
# at a clean shutdown), checks what it did, and prints
#   KLPTEST <step> PASS | FAIL <reason>
# The host reads each boot's verdict from the console: a step that must end
# in a panic or a power cut prints its PASS just before it.
. /klptest/lib.sh

SD=/var/lib/klpctl
BD=$SD/bundles
INIT=/etc/init.d/klpctl
NOTES=/persist/klptest
T=/tmp/klptest
mkdir -p "$T"
step=$(sed -n 's/.*klptest\.step=\([a-z0-9_]*\).*/\1/p' /proc/cmdline)
[ -n "$step" ] || step=nostep
klp_case_begin "$step"

# --- the disk ---------------------------------------------------------------

# In dependency order (the host resolved it with depmod and modprobe);
# skipping what is loaded already.
for m in $(cat /klptest/disk-modules); do
    name=${m##*/}
    name=$(echo "${name%.ko}" | tr - _)
    grep -q "^$name " /proc/modules && continue
    # crc32c-intel needs SSE4.2, which TCG's default CPU lacks: ENODEV.
    insmod "/lib/modules/$(uname -r)/$m" || echo "insmod $m failed"
done
klp_wait_for 20 test -b /dev/vda || { klp_fail "no /dev/vda after loading the disk modules"; exit 1; }
mkdir -p /persist "$SD"
mount -t ext4 /dev/vda /persist || { klp_fail "cannot mount /dev/vda"; exit 1; }
mkdir -p /persist/klpctl "$NOTES"
mount --bind /persist/klpctl "$SD"

# --- helpers ----------------------------------------------------------------

# start: the init script's start, as at boot; its stderr in $T/start.err,
# the JSON report in /run/klpctl-boot.json (flattened in $T/boot.flat).
start() {
    echo "+ $INIT start"
    "$INIT" start 2>"$T/start.err"
    START_RC=$?
    sed 's/^/  ! /' "$T/start.err"
    sed 's/^/  | /' /run/klpctl-boot.json
    echo "  = exit $START_RC"
    klp_json_flat </run/klpctl-boot.json >"$T/boot.flat" \
        || klp_fail "the boot report is not JSON"
}

# stop: the init script's stop, as at a clean shutdown.
stop() {
    echo "+ $INIT stop"
    "$INIT" stop >"$T/stop.out" 2>&1 || klp_fail "$INIT stop exited $?: $(cat "$T/stop.out")"
    cat "$T/stop.out"
}

# result FILE: "result reason" of bundle FILE (by base name) in the report.
result() {
    awk -F= -v f="/$1" '
        { v[$1] = substr($0, length($1) + 2) }
        $1 ~ /^results\.[0-9]+\.bundle$/ && substr($2, length($2) - length(f) + 1) == f {
            split($1, p, "."); i = p[2]
        }
        END {
            if (i == "") exit 1
            r = v["results." i ".result"]; w = v["results." i ".reason"]
            print r (w == "" ? "" : " " w)
        }' "$T/boot.flat"
}

expect_result() { # FILE EXPECTED
    local got
    got=$(result "$1") || got=absent
    [ "$got" = "$2" ] || klp_fail "$1: boot apply says '$got', expected '$2'"
}

expect_enabled() {
    for p in "$@"; do
        [ "$(cat "/sys/kernel/livepatch/$p/enabled" 2>/dev/null)" = 1 ] \
            || klp_fail "$p is not enabled in /sys/kernel/livepatch"
    done
}

expect_absent() {
    for p in "$@"; do
        [ ! -d "/sys/kernel/livepatch/$p" ] || klp_fail "$p is in /sys/kernel/livepatch"
    done
}

expect_patches() { # the exact set of livepatches, sorted, space-separated
    local got
    got=$(ls /sys/kernel/livepatch | sort | tr '\n' ' ' | sed 's/ $//')
    [ "$got" = "$1" ] || klp_fail "livepatches are '$got', expected '$1'"
}

expect_cmdline() {
    local got
    got=$(cat /proc/cmdline)
    [ "$got" = "$1" ] || klp_fail "/proc/cmdline reads '$got', expected '$1'"
}

# quarantined: the quarantine as status --state-dir --json lists it, one
# "name stream version sha256 boot_id" line each.
quarantined() {
    klpctl status --state-dir "$SD" --json >"$T/status" 2>"$T/status.err" \
        || klp_fail "status --state-dir --json exited $?: $(cat "$T/status.err")"
    klp_json_flat <"$T/status" >"$T/status.flat" || klp_fail "status --json is not JSON"
    awk -F= '
        $1 ~ /^quarantined\.[0-9]+\./ { split($1, p, "."); v[p[2], p[3]] = $2; if (p[2] + 1 > n) n = p[2] + 1 }
        END { for (i = 0; i < n; i++) print v[i, "name"], v[i, "stream"], v[i, "version"], v[i, "sha256"], v[i, "boot_id"] }
    ' "$T/status.flat"
}

says_start() { grep -qE "$1" "$T/start.err"; }

# The confirmation window for this boot's start (seconds after boot).
window() { printf 'KLPCTL_CONFIRM_AFTER=%s\n' "$1" >/etc/default/klpctl; }

# A boot that ends without its init script's stop: no unmount, no sync.
power_cut() {
    echo "KLPTEST-POWERCUT $step"
    echo o >/proc/sysrq-trigger
    sleep 10
}

# The quarantine as the boot that made it recorded it.
same_quarantine() {
    local now
    now=$(quarantined)
    [ "$now" = "$(cat "$NOTES/quarantine")" ] \
        || klp_fail "the quarantine changed: '$now', before '$(cat "$NOTES/quarantine")'"
    says_start "klpctl: quarantined " && klp_fail "start quarantined something: $(cat "$T/start.err")"
    dmesg | grep -q 'klpctl: quarantined' && klp_fail "the kernel log has a new quarantine"
}

BASIC="klpctl-test: basic patched"
BASE_V2="klpctl-test: cumulative v2"
window 300

# --- the boots ----------------------------------------------------------------

case $step in
b1_apply)
    # Everything in the bundle directory: cumulative stream base (v2
    # supersedes v1) and klp_basic on top; a clean shutdown confirms it.
    start
    [ "$START_RC" = 0 ] || klp_fail "start exited $START_RC"
    expect_result base_v2.klp applied
    expect_result basic.klp applied
    expect_patches "klp_basic klp_cumul_v2"
    expect_enabled klp_basic klp_cumul_v2
    expect_cmdline "$BASIC"
    [ "$(grep -c '^try ' "$SD/guard")" = 2 ] || klp_fail "the journal has not 2 try lines: $(cat "$SD/guard")"
    stop
    ! grep -q '^try ' "$SD/guard" || klp_fail "stop did not prove every try: $(cat "$SD/guard")"
    [ "$(grep -c "^good " "$SD/guard")" = 2 ] || klp_fail "the guard file has not 2 good payloads: $(cat "$SD/guard")"
    ;;
b2_panic)
    # An update drops the panic bundle into the directory; the boot applies
    # it, and the first read of /proc/version panics the kernel.
    cp /klptest/bundles/panic.klp "$BD/panic.klp"
    sync
    start
    [ "$START_RC" = 0 ] || klp_fail "start exited $START_RC"
    expect_result panic.klp applied
    expect_enabled klp_basic klp_cumul_v2 klp_panic
    grep -q '^try [0-9a-f]* klp_panic panic 1 [0-9]*$' "$SD/guard" \
        || klp_fail "the journal does not record the try of klp_panic: $(cat "$SD/guard")"
    klp_pass
    echo "KLPTEST-ARMED $step: reading /proc/version"
    cat /proc/version
    klp_fail "reading /proc/version did not panic"
    ;;
b3_quarantined)
    # The panicked boot was never confirmed: klp_panic is quarantined,
    # skipped and reported; the rest (good since b1) is applied.
    start
    [ "$START_RC" = 0 ] || klp_fail "start exited $START_RC"
    expect_result panic.klp "skipped quarantined"
    expect_result base_v2.klp applied
    expect_result basic.klp applied
    expect_patches "klp_basic klp_cumul_v2"
    says_start "klpctl: quarantined klp_panic \(stream panic version 1\)" \
        || klp_fail "start's stderr does not report the quarantine"
    says_start "panic.klp.*quarantined" || klp_fail "start's stderr does not report the skip"
    dmesg | grep -q 'klpctl: quarantined klp_panic stream=panic version=1 sha256=' \
        || klp_fail "no quarantine line in the kernel log"
    quarantined >"$NOTES/quarantine"
    cat "$NOTES/quarantine"
    [ "$(wc -l <"$NOTES/quarantine")" = 1 ] && grep -q '^klp_panic panic 1 [0-9a-f]\{64\} [0-9a-f-]\{36\}$' "$NOTES/quarantine" \
        || klp_fail "status --state-dir --json does not list exactly klp_panic as quarantined"
    [ "$(cat /proc/version)" != "" ] || klp_fail "/proc/version is empty"
    expect_cmdline "$BASIC"
    stop
    ;;
b4_clean)
    # After b3's clean shutdown nothing new is quarantined. This boot ends
    # in a power cut after its (short) confirmation window.
    window 1
    start
    [ "$START_RC" = 0 ] || klp_fail "start exited $START_RC"
    expect_result panic.klp "skipped quarantined"
    expect_patches "klp_basic klp_cumul_v2"
    same_quarantine
    klp_wait_for 30 sh -c "! grep -q '^try ' '$SD/guard'" \
        || klp_fail "the background confirmation did not prove the tries: $(cat "$SD/guard")"
    klp_pass
    power_cut
    ;;
b5_enable0)
    # klpctl.enable=0: nothing applied, and said so; the power cut after
    # b4's window quarantined nothing.
    start
    [ "$START_RC" = 0 ] || klp_fail "start exited $START_RC"
    [ "$(klp_json_get switch </run/klpctl-boot.json)" = klpctl.enable=0 ] \
        || klp_fail "the report has no \"switch\":\"klpctl.enable=0\""
    [ "$(klp_json_get results </run/klpctl-boot.json)" = "[]" ] || klp_fail "the report lists results"
    says_start "klpctl.enable=0" || klp_fail "start's stderr does not mention klpctl.enable=0"
    dmesg | grep -q 'klpctl: klpctl.enable=0' || klp_fail "no klpctl.enable=0 line in the kernel log"
    expect_patches ""
    same_quarantine
    stop
    ;;
b6_skip)
    # klpctl.skip=klp_basic skips exactly that patch. Then the operator
    # lifts the quarantine of klp_panic.
    start
    [ "$START_RC" = 0 ] || klp_fail "start exited $START_RC"
    expect_result basic.klp "skipped klpctl.skip"
    expect_result base_v2.klp applied
    expect_result panic.klp "skipped quarantined"
    expect_patches "klp_cumul_v2"
    expect_cmdline "$BASE_V2"
    same_quarantine
    echo "+ klpctl unquarantine klp_panic --state-dir $SD"
    out=$(klpctl unquarantine klp_panic --state-dir "$SD" 2>&1) || klp_fail "unquarantine exited $?: $out"
    echo "  | $out"
    [ "$out" = "klp_panic: 1 payload(s) released from quarantine" ] || klp_fail "unquarantine said '$out'"
    [ -z "$(quarantined)" ] || klp_fail "status still lists a quarantine"
    stop
    ;;
b7_reapply)
    # Released, klp_panic is applied again (/proc/version is not read).
    # Then the operator uninstalls it, and installs the bundles for the
    # kernel the next boot runs.
    start
    [ "$START_RC" = 0 ] || klp_fail "start exited $START_RC"
    expect_result panic.klp applied
    expect_patches "klp_basic klp_cumul_v2 klp_panic"
    expect_enabled klp_basic klp_cumul_v2 klp_panic
    [ -z "$(quarantined)" ] || klp_fail "status lists a quarantine"
    echo "+ klpctl uninstall klp_panic --dir $BD"
    out=$(klpctl uninstall klp_panic --dir "$BD" 2>&1) || klp_fail "uninstall exited $?: $out"
    echo "$out" | sed 's/^/  | /'
    [ ! -e "$BD/panic.klp" ] || klp_fail "uninstall left $BD/panic.klp"
    klp_wait_for 30 klp_patch_gone klp_panic || klp_fail "klp_panic still in sysfs after uninstall"
    next=$(cat /klptest/next-release)
    nbid=$(cat /klptest/next-build-id)
    echo "+ klpctl install (for $next) --dir $BD --state-dir $SD --json"
    klpctl install /klptest/next/base_v2.klp /klptest/next/basic.klp --dir "$BD" \
        --state-dir "$SD" --json >"$T/install" 2>"$T/install.err"
    rc=$?
    sed 's/^/  | /' "$T/install"
    sed 's/^/  ! /' "$T/install.err"
    [ "$rc" = 0 ] || klp_fail "install exited $rc"
    # Both bundles name the next kernel's build-id, so it is in their names,
    # and so is each one's version (base v2, basic v1).
    for f in "klp_cumul_v2@$next@$nbid@v2.klp" "klp_basic@$next@$nbid@v1.klp"; do
        [ -f "$BD/$f" ] || klp_fail "install did not store $f"
    done
    ls -A "$BD" | grep -q '^\.' && klp_fail "a hidden file is left in $BD: $(ls -A "$BD")"
    klp_json_flat <"$T/install" >"$T/install.flat"
    grep -qx 'results.0.result=installed' "$T/install.flat" && grep -qx 'results.0.applied=null' "$T/install.flat" \
        || klp_fail "install --json does not say installed and not applied"
    expect_patches "klp_basic klp_cumul_v2"
    stop
    ;;
b8_next_kernel)
    # The next kernel, same disk: the bundles installed for it are applied;
    # those for the previous kernel are skipped.
    start
    [ "$START_RC" = 0 ] || klp_fail "start exited $START_RC"
    r=$(uname -r)@$(cat /klptest/build-id)
    expect_result "klp_cumul_v2@$r@v2.klp" applied
    expect_result "klp_basic@$r@v1.klp" applied
    expect_result base_v2.klp "skipped other kernel"
    expect_result basic.klp "skipped other kernel"
    expect_patches "klp_basic klp_cumul_v2"
    expect_enabled klp_basic klp_cumul_v2
    expect_cmdline "$BASIC"
    [ -z "$(quarantined)" ] || klp_fail "status lists a quarantine"
    stop
    ;;
*)
    klp_fail "unknown step '$step'"
    ;;
esac

umount "$SD"
umount /persist || klp_fail "cannot unmount the disk"
klp_case_end
