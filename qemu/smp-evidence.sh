#!/bin/bash
# Is the guest oops seen on 6.12 under multi-threaded TCG during livepatch
# transitions klpctl's doing, or the emulator's? Boot the rig's kernels with
# 2 vCPUs and run livepatch cycles WITHOUT klpctl (busybox insmod + sysfs,
# guest script qemu/guest/smp-evidence.sh) under fork/exec load, in several
# configurations, then count oopses and transition times per configuration.
#
# usage: qemu/smp-evidence.sh [-b BOOTS] [-c CYCLES] [-a] [-p] [CONFIG...]
#   CONFIG   one or more of the names below, or "all"; default: a b c d
#   -b N     boots per configuration (default: the configuration's own)
#   -c N     cycles per boot (default: the configuration's own)
#   -a       add the boots to the configuration's existing logs instead of
#            starting again from boot 1
#   -p       boot nothing; print the summary of the logs already there
#
# Needs the rig's caches (qemu/fetch-kernels.sh, qemu/build-modules.sh); it
# only reads target/qemu/ and writes target/smp-evidence/:
#   initramfs-<release>.cpio.gz, logs/<config>.<n>.log (serial console),
#   logs/<config>.<n>.meta (qemu exit code, wall time, command), summary.md
# Rerunning a configuration overwrites its logs from boot 1 on, unless -a.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

EV_DIR=$REPO_DIR/target/smp-evidence
LOG_DIR=$EV_DIR/logs

# name|series|accel|smp|guest mode|load loops|cycles|bound s|host timeout s|boots|what
CONFIGS='
a|6.12|tcg,thread=multi|2|livepatch|2|10|150|400|3|6.12, MTTCG, fork/exec load
b|6.12|tcg,thread=single|2|livepatch|2|2|150|700|2|6.12, single-threaded TCG, fork/exec load
c|6.1|tcg,thread=multi|2|livepatch|2|10|150|400|3|6.1, MTTCG, fork/exec load
d|6.12|tcg,thread=multi|2|livepatch|0|10|150|400|3|6.12, MTTCG, no load
e|6.12|tcg,thread=multi|2|preempt|2|10|150|400|3|6.12, MTTCG, load, no livepatch: preempt full<->voluntary
f|6.1|tcg,thread=multi|2|preempt|2|10|150|400|3|6.1, MTTCG, load, no livepatch: preempt full<->voluntary
g|6.12|kvm|2|livepatch|2|10|150|400|3|6.12, KVM (hardware), fork/exec load (needs a working /dev/kvm)
h|6.12|tcg,thread=multi|2|idle|2|10|150|400|2|6.12, MTTCG, load only (no patching at all)
'

config_line() {
    printf '%s\n' "$CONFIGS" | awk -F'|' -v n="$1" '$1 == n'
}

usage() { die "usage: $0 [-b BOOTS] [-c CYCLES] [-a] [-p] [CONFIG...] (configs: $(printf '%s\n' "$CONFIGS" | awk -F'|' 'NF {printf "%s ", $1}')all)"; }

boots_opt=
cycles_opt=
parse_only=0
append_boots=0
while getopts b:c:ap opt; do
    case $opt in
        b) boots_opt=$OPTARG ;;
        c) cycles_opt=$OPTARG ;;
        a) append_boots=1 ;;
        p) parse_only=1 ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
configs=("$@")
[ "${#configs[@]}" -gt 0 ] || configs=(a b c d)
if [ "${configs[0]}" = all ]; then
    mapfile -t configs < <(printf '%s\n' "$CONFIGS" | awk -F'|' 'NF {print $1}')
fi
for c in "${configs[@]}"; do
    [ -n "$(config_line "$c")" ] || usage
done

# --- initramfs: busybox-static, the guest script as /init, klp_basic.ko ---
build_initramfs() { # RELEASE -> path on stdout
    local release=$1 out root applet
    out=$EV_DIR/initramfs-$release.cpio.gz
    local ko=$OUT_DIR/build/$release/klp_basic.ko
    [ -s "$ko" ] || die "no $ko: run qemu/build-modules.sh $release"
    root=$(mktemp -d "${TMPDIR:-/tmp}/smpev-root.XXXXXX")
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,smpev}
    install -m 0755 /bin/busybox "$root/bin/busybox"
    for applet in $(/bin/busybox --list-full); do
        [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
    done
    install -m 0755 "$QEMU_DIR/guest/smp-evidence.sh" "$root/init"
    install -m 0644 "$ko" "$root/smpev/klp_basic.ko"
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort \
        | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 >"$out.tmp"
    rm -rf "$root"
    mv "$out.tmp" "$out"
    printf '%s\n' "$out"
}

# monitor_cmd SOCKET COMMAND: one human-monitor command, its output on stdout.
monitor_cmd() {
    python3 - "$1" "$2" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(0.5)
s.sendall((sys.argv[2] + "\n").encode())
out, end = b"", time.time() + 4
while time.time() < end:
    try:
        d = s.recv(65536)
    except socket.timeout:
        continue
    if not d:
        break
    out += d
sys.stdout.write(out.decode(errors="replace"))
PY
}

# Interrupted: do not leave a guest running.
QEMU_PID=
trap '[ -n "$QEMU_PID" ] && kill "$QEMU_PID" 2>/dev/null; true' EXIT
trap 'exit 130' INT TERM

# --- one boot -------------------------------------------------------------
boot_one() { # CONFIG N
    local name=$1 n=$2 series accel smp mode load cycles bound limit boots what
    IFS='|' read -r _ series accel smp mode load cycles bound limit boots what <<<"$(config_line "$name")"
    [ -n "$cycles_opt" ] && cycles=$cycles_opt
    local release kernel initrd logfile meta append start end rc
    release=$(to_release "$series")
    kernel=$OUT_DIR/kernels/$release/vmlinuz
    initrd=$EV_DIR/initramfs-$release.cpio.gz
    logfile=$LOG_DIR/$name.$n.log
    meta=$LOG_DIR/$name.$n.meta
    # loglevel=5: warnings, errors and oopses reach the console, the
    # livepatch core's notices (read by the guest from dmesg) do not.
    append="console=ttyS0 panic=-1 loglevel=5 smpev.mode=$mode smpev.cycles=$cycles smpev.bound=$bound smpev.load=$load"
    local cmd=(qemu-system-x86_64 -accel "$accel" -m 512 -smp "$smp" -nographic -no-reboot -nic none
        -kernel "$kernel" -initrd "$initrd" -append "$append")
    # The guest prints a line after every wait, and no wait lasts longer
    # than the bound; a guest silent for longer than that is hung: dump its vCPUs' registers (twice, to tell a spin from a stop)
    # to <config>.<n>.regs and end it instead of waiting for the timeout.
    local silence=$((bound + 45)) sock=$EV_DIR/monitor.sock hung=0 age
    rm -f "$sock" "$LOG_DIR/$name.$n.regs"
    log "config $name boot $n: $what (timeout ${limit}s, silence ${silence}s)"
    start=$(date +%s.%N)
    timeout --kill-after=10 "$limit" "${cmd[@]}" -monitor "unix:$sock,server=on,wait=off" \
        </dev/null >"$logfile" 2>&1 &
    QEMU_PID=$!
    while kill -0 "$QEMU_PID" 2>/dev/null; do
        sleep 5
        kill -0 "$QEMU_PID" 2>/dev/null || break
        age=$(($(date +%s) - $(stat -c %Y "$logfile")))
        if [ "$age" -ge "$silence" ]; then
            hung=1
            log "config $name boot $n: console silent for ${age}s, dumping registers and stopping"
            {
                monitor_cmd "$sock" "info registers -a"
                sleep 2
                monitor_cmd "$sock" "info registers -a"
            } 2>&1 | tr -d '\r' | grep -aE 'CPU#|^RIP=|^RAX=|^CR0=' >"$LOG_DIR/$name.$n.regs" || true
            kill "$QEMU_PID" 2>/dev/null || true
            break
        fi
    done
    set +e
    wait "$QEMU_PID"
    rc=$?
    set -e
    QEMU_PID=
    end=$(date +%s.%N)
    {
        printf 'rc=%s\n' "$rc"
        printf 'release=%s\n' "$release"
        printf 'hung=%s\n' "$hung"
        printf 'wall_s=%s\n' "$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}')"
        printf 'cycles_planned=%s\n' "$cycles"
        printf 'cmd=timeout --kill-after=10 %s' "$limit"
        printf ' %q' "${cmd[@]}" -monitor "unix:$sock,server=on,wait=off"
        printf '\n'
    } >"$meta"
    log "config $name boot $n: qemu exit $rc, $(grep -c '^SMPEV cycle' "$logfile" || true) cycles, $(sed -n 's/^wall_s=//p' "$meta")s"
}

# --- summary --------------------------------------------------------------
# Per boot: config boot rc wall_s planned completed oops int3 bug warn panic
# timeouts done(0/1) hung(0/1). Oopses are counted by die()'s
# "[#N]" marker, which every kernel oops line carries on 6.1 and 6.12.
boot_facts() { # LOGFILE META
    local rc wall planned hung
    rc=$(sed -n 's/^rc=//p' "$2")
    hung=$(sed -n 's/^hung=//p' "$2")
    wall=$(sed -n 's/^wall_s=//p' "$2")
    planned=$(sed -n 's/^cycles_planned=//p' "$2")
    awk -v rc="$rc" -v wall="$wall" -v planned="$planned" -v hung="${hung:-0}" '
        { sub(/\r$/, "") }
        /^SMPEV cycle / { done_c++ }
        / [0-9a-f][0-9a-f][0-9a-f][0-9a-f] \[#[0-9]+\]/ { oops++; if (/int3/) int3++ }
        /BUG:/ { bug++ }
        /WARNING:/ { warn++ }
        /Kernel panic/ { panic++ }
        /^SMPEV timeout/ { to++ }
        /^SMPEV-DONE/ { fin = 1 }
        END { if (fin) hung = 0
              printf "%s %s %s %d %d %d %d %d %d %d %d %d\n", rc, wall, planned, done_c, oops, int3, bug, warn, panic, to, fin, hung }
    ' "$1"
}

median_max() { # values on stdin -> "median/max" or "-"
    sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "-"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%g/%g\n", m, v[NR] }'
}

summary() {
    local name series accel smp mode load cycles bound limit boots what
    local logs f meta facts
    printf '| config | kernel | accel | load | mode | boots | cycles done/planned | boots with oops | oopses (int3) | BUG | WARNING | panic | hung (silent) | wait timeouts | enable ms median/max | disable ms median/max | kernel patching ms median/max | kernel unpatching ms median/max | forks/s |\n'
    printf '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'
    for name in "${configs[@]}"; do
        IFS='|' read -r _ series accel smp mode load cycles bound limit boots what <<<"$(config_line "$name")"
        logs=()
        for f in "$LOG_DIR/$name".*.log; do
            [ -e "$f" ] && [ -e "${f%.log}.meta" ] && logs+=("$f")
        done
        [ "${#logs[@]}" -gt 0 ] || continue
        local nb=0 done_c=0 plan=0 boops=0 oops=0 int3=0 bug=0 warn=0 panic=0 to=0 hg=0
        local frate=() rel
        for f in "${logs[@]}"; do
            meta=${f%.log}.meta
            read -r _ _ p d o i b w pa t _ h <<<"$(boot_facts "$f" "$meta")"
            rel=$(sed -n 's/^release=//p' "$meta")
            hg=$((hg + h))
            nb=$((nb + 1)); done_c=$((done_c + d)); plan=$((plan + p))
            [ "$o" -gt 0 ] && boops=$((boops + 1))
            oops=$((oops + o)); int3=$((int3 + i)); bug=$((bug + b)); warn=$((warn + w))
            panic=$((panic + pa)); to=$((to + t))
            frate+=("$(sed -n 's/^SMPEV-DONE.*forks_per_s=\([0-9]*\).*/\1/p' "$f")")
        done
        local en dis ken kdis fr
        en=$(cat "${logs[@]}" | awk '/^SMPEV cycle / {print $5}' | median_max)
        dis=$(cat "${logs[@]}" | awk '/^SMPEV cycle / {print $7}' | median_max)
        ken=$(cat "${logs[@]}" | awk '/^SMPEV cycle / && $9 != "-" {print $9}' | median_max)
        kdis=$(cat "${logs[@]}" | awk '/^SMPEV cycle / && $11 != "-" {print $11}' | median_max)
        fr=$(printf '%s\n' "${frate[@]}" | awk 'NF {s = s sep $1; sep = ","} END {print (s == "" ? "-" : s)}')
        printf '| %s | %s | %s | %s | %s | %d | %d/%d | %d | %d (%d) | %d | %d | %d | %d | %d | %s | %s | %s | %s | %s |\n' \
            "$name" "${rel:-?}" "$accel -smp $smp" "$load" "$mode" \
            "$nb" "$done_c" "$plan" "$boops" "$oops" "$int3" "$bug" "$warn" "$panic" "$hg" "$to" \
            "$en" "$dis" "$ken" "$kdis" "$fr"
    done
    printf '\nPer boot (config.boot: qemu rc, wall s, cycles done/planned, oopses, guest finished):\n\n'
    for name in "${configs[@]}"; do
        for f in "$LOG_DIR/$name".*.log; do
            [ -e "$f" ] && [ -e "${f%.log}.meta" ] || continue
            read -r rc wall p d o _ _ _ _ _ fin h <<<"$(boot_facts "$f" "${f%.log}.meta")"
            printf -- '- %s: rc %s, %ss, %s/%s cycles, %s oops, %s\n' \
                "$(basename "${f%.log}")" "$rc" "$wall" "$d" "$p" "$o" \
                "$(if [ "$fin" = 1 ]; then echo "SMPEV-DONE"; elif [ "$h" = 1 ]; then echo "hung: console silent, stopped by the host"; else echo "no SMPEV-DONE (crashed)"; fi)"
        done
    done
}

mkdir -p "$LOG_DIR"
if [ "$parse_only" = 0 ]; then
    need_pkg busybox-static qemu-system-x86 seabios ipxe-qemu gzip
    need_cmd readelf binutils
    need_cmd python3 python3
    readelf -l /bin/busybox 2>/dev/null | grep -q INTERP \
        && die "/bin/busybox is dynamically linked; install busybox-static"
    declare -A built=()
    for name in "${configs[@]}"; do
        series=$(config_line "$name" | cut -d'|' -f2)
        accel=$(config_line "$name" | cut -d'|' -f3)
        release=$(to_release "$series")
        [ -n "$release" ] || die "series $series not resolved: run qemu/fetch-kernels.sh"
        [ -s "$OUT_DIR/kernels/$release/vmlinuz" ] || die "no kernel for $release: run qemu/fetch-kernels.sh"
        if [ "$accel" = kvm ] && ! [ -r /dev/kvm -a -w /dev/kvm ]; then
            log "config $name: no usable /dev/kvm, skipped"
            continue
        fi
        if [ -z "${built[$release]:-}" ]; then
            build_initramfs "$release" >/dev/null
            built[$release]=1
        fi
        boots=$(config_line "$name" | cut -d'|' -f10)
        [ -n "$boots_opt" ] && boots=$boots_opt
        first=1
        if [ "$append_boots" = 1 ]; then
            while [ -e "$LOG_DIR/$name.$first.log" ]; do first=$((first + 1)); done
        else
            rm -f "$LOG_DIR/$name".*.log "$LOG_DIR/$name".*.meta "$LOG_DIR/$name".*.regs
        fi
        for n in $(seq "$first" $((first + boots - 1))); do
            boot_one "$name" "$n"
        done
    done
fi
summary | tee "$EV_DIR/summary.md"
