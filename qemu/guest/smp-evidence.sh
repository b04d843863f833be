#!/bin/sh
# PID 1 of the smp-evidence VM (busybox sh). No klpctl is involved.
#
# Runs fork/exec load on every vCPU and, meanwhile, N cycles of one of:
#   mode=livepatch  busybox insmod klp_basic.ko (module init enables the
#                   patch), wait for transition=0, echo 0 > enabled, wait for
#                   the sysfs dir to go and refcnt to reach 0, rmmod
#   mode=preempt    no livepatch at all: switch the preemption model through
#                   /sys/kernel/debug/sched/preempt (full, then back to
#                   voluntary), which rewrites the same kind of static calls
#                   a 6.12 livepatch transition rewrites
#   mode=idle       neither: only the load, for the same number of seconds
#                   (a control for the load itself)
#
# Parameters come from the kernel command line (read once, before any patch
# replaces /proc/cmdline): smpev.mode= smpev.cycles= smpev.bound= (seconds
# each wait may take) smpev.load= (number of load loops, default = CPUs).
#
# panic_on_oops and panic_on_warn are set to 0 on purpose: the host counts
# oopses in the console log, and the first oops should not hide a second one
# or the state of the cycle it hit. The guest stops the cycles as soon as the
# kernel is tainted with D (an oops happened) and powers off.
#
# Output, one line each:
#   SMPEV-BOOT release=R cpus=N mode=M cycles=N bound=S load=N
#   SMPEV phase cycle N enabled|disabled ms X   (progress, livepatch mode)
#   SMPEV cycle N enable_ms X disable_ms Y ktrans_en_ms A ktrans_dis_ms B forks F
#   SMPEV timeout cycle N phase P after_ms X
#   SMPEV fail cycle N REASON
#   SMPEV-DONE completed=N tainted=T uptime=U forks_per_s=F

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /tmp /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null

echo 0 >/proc/sys/kernel/panic_on_oops
echo 0 >/proc/sys/kernel/panic_on_warn

param() { # NAME DEFAULT
    v=$(tr ' ' '\n' </proc/cmdline | sed -n "s/^smpev\.$1=//p" | tail -n 1)
    echo "${v:-$2}"
}
cpus=$(grep -c '^processor' /proc/cpuinfo)
mode=$(param mode livepatch)
cycles=$(param cycles 10)
bound=$(param bound 150)
load=$(param load "$cpus")
orig_cmdline=$(cat /proc/cmdline)

# Milliseconds since boot (/proc/uptime has 10 ms resolution).
now_ms() {
    read -r up _ </proc/uptime
    frac=${up#*.}
    frac=${frac#0}
    echo $(( ${up%.*} * 1000 + frac * 10 ))
}
forks() { sed -n 's/^processes //p' /proc/stat; }
died() { [ $(( $(cat /proc/sys/kernel/tainted) & 128 )) != 0 ]; }

# wait_until BOUND_S CMD...: poll every 10 ms; fails after BOUND_S seconds.
wait_until() {
    wl_end=$(( $(now_ms) + $1 * 1000 ))
    shift
    while ! "$@"; do
        [ "$(now_ms)" -ge "$wl_end" ] && return 1
        usleep 10000
    done
    return 0
}
trans_done() { [ "$(cat /sys/kernel/livepatch/klp_basic/transition 2>/dev/null)" = 0 ]; }
patch_gone() { [ ! -d /sys/kernel/livepatch/klp_basic ]; }
refcnt_zero() { [ "$(cat /sys/module/klp_basic/refcnt 2>/dev/null)" = 0 ]; }

# Kernel-clock length (ms, 3 decimals) from the first line matching START to
# the first later line matching END, in the kernel log since this cycle's
# canary; "-" when either is missing.
ktime() { # CYCLE START END
    dmesg | sed -n "/smpev: cycle $1 start/,\$p" | awk -v s="$2" -v e="$3" '
        function ts(line) { sub(/^\[ */, "", line); sub(/\].*/, "", line); return line + 0 }
        !t0 && index($0, s) { t0 = ts($0); next }
        t0 && index($0, e) { printf "%.3f", (ts($0) - t0) * 1000; found = 1; exit }
        END { if (!found) printf "-" }'
}

load_loop() { # INDEX
    while :; do
        /bin/true
    done
}
load_pids=
start_load() {
    load_pids=
    i=0
    while [ "$i" -lt "$load" ]; do
        load_loop "$i" &
        load_pids="$load_pids $!"
        i=$((i + 1))
    done
}
# A load loop whose fork oopsed is gone; say so and start a new one.
check_load() {
    for p in $load_pids; do
        kill -0 "$p" 2>/dev/null && continue
        echo "SMPEV load-loop-died cycle $1 pid $p"
        load_loop x &
        load_pids="$load_pids $!"
    done
}

echo
echo "SMPEV-BOOT release=$(uname -r) cpus=$cpus mode=$mode cycles=$cycles bound=$bound load=$load"
[ -d /sys/kernel/livepatch ] || echo "SMPEV fail cycle 0 no /sys/kernel/livepatch"
# Where the preemption entry points are, so a call target in an oops's Code:
# bytes can be named.
awk '$3 ~ /^(__cond_resched|klp_cond_resched|dynamic_cond_resched|dynamic_might_resched|raw_irqentry_exit_cond_resched|dynamic_irqentry_exit_cond_resched|irqentry_exit|unmap_page_range|zap_pte_range|copy_page_range|__tlb_batch_free_encoded_pages|cgroup_can_fork|mutex_lock_killable|shmem_get_folio_gfp|__SCT__cond_resched|__SCT__might_resched|__SCT__irqentry_exit_cond_resched)$/ {print "SMPEV-SYM", $3, $1}' /proc/kallsyms

start_load
boot_ms=$(now_ms)
forks0=$(forks)
completed=0
c=1
while [ "$c" -le "$cycles" ]; do
    echo "<5>smpev: cycle $c start" >/dev/kmsg
    f0=$(forks)
    case $mode in
    livepatch)
        t0=$(now_ms)
        if ! insmod /smpev/klp_basic.ko; then
            echo "SMPEV fail cycle $c insmod"
            break
        fi
        if ! wait_until "$bound" trans_done; then
            echo "SMPEV timeout cycle $c phase enable after_ms $(( $(now_ms) - t0 ))"
            break
        fi
        t1=$(now_ms)
        echo "SMPEV phase cycle $c enabled ms $((t1 - t0))"
        got=$(cat /proc/cmdline)
        [ "$got" = "klpctl-test: basic patched" ] \
            || echo "SMPEV fail cycle $c /proc/cmdline reads '$got' while patched"
        echo 0 >/sys/kernel/livepatch/klp_basic/enabled
        if ! wait_until "$bound" patch_gone; then
            echo "SMPEV timeout cycle $c phase disable after_ms $(( $(now_ms) - t1 ))"
            break
        fi
        t2=$(now_ms)
        echo "SMPEV phase cycle $c disabled ms $((t2 - t1))"
        if ! wait_until "$bound" refcnt_zero; then
            echo "SMPEV timeout cycle $c phase refcnt after_ms $(( $(now_ms) - t2 ))"
            break
        fi
        if ! rmmod klp_basic; then
            echo "SMPEV fail cycle $c rmmod"
            break
        fi
        [ "$(cat /proc/cmdline)" = "$orig_cmdline" ] \
            || echo "SMPEV fail cycle $c /proc/cmdline not restored"
        ken=$(ktime "$c" "'klp_basic': starting patching transition" "'klp_basic': patching complete")
        kdis=$(ktime "$c" "'klp_basic': starting unpatching transition" "'klp_basic': unpatching complete")
        ;;
    preempt)
        pf=/sys/kernel/debug/sched/preempt
        if [ ! -w "$pf" ]; then
            echo "SMPEV fail cycle $c no $pf"
            break
        fi
        t0=$(now_ms)
        echo full >"$pf" || { echo "SMPEV fail cycle $c write full"; break; }
        t1=$(now_ms)
        echo voluntary >"$pf" || { echo "SMPEV fail cycle $c write voluntary"; break; }
        t2=$(now_ms)
        # Keep the same pacing as a livepatch cycle would have, roughly.
        sleep 2
        ken=- kdis=-
        ;;
    idle)
        t0=$(now_ms) t1=$t0
        sleep 3
        t2=$(now_ms)
        ken=- kdis=-
        ;;
    *)
        echo "SMPEV fail cycle $c unknown mode $mode"
        break
        ;;
    esac
    echo "SMPEV cycle $c enable_ms $((t1 - t0)) disable_ms $((t2 - t1)) ktrans_en_ms $ken ktrans_dis_ms $kdis forks $(( $(forks) - f0 ))"
    completed=$c
    check_load "$c"
    if died; then
        echo "SMPEV oops-taint cycle $c"
        break
    fi
    c=$((c + 1))
done

end_ms=$(now_ms)
elapsed=$((end_ms - boot_ms))
[ "$elapsed" -gt 0 ] || elapsed=1
rate=$(( ($(forks) - forks0) * 1000 / elapsed ))
for p in $load_pids; do kill "$p" 2>/dev/null; done
read -r up _ </proc/uptime
echo "SMPEV-DONE completed=$completed tainted=$(cat /proc/sys/kernel/tainted) uptime=$up forks_per_s=$rate"
sync
poweroff -f
echo o >/proc/sysrq-trigger
sleep 5
