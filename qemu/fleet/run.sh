#!/bin/bash
# The fleet tier: boot four Python-less guests on two kernels at once (Debian
# 12's 6.1 and 6.12, each running dropbear, port 22 forwarded to 127.0.0.1
# only), drive them with the klpctl.klpctl collection's playbook through the
# runs check.py defines, check every run against what the guests' sysfs
# shows, and render the fleet report in headless Chromium.
#
# usage: run.sh            stdout: one line per check, and the timings
# Environment: KLPCTL, KLPCTL_DEVICE (prebuilt binaries, as prepare.sh).
# Outputs (logs, inventory, reports, screenshots): target/qemu/fleet/.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
start=$(date +%s.%N)

need_pkg busybox-static dropbear-bin openssh-client chromium python3 python3-venv
fleet=$OUT_DIR/fleet
mkdir -p "$fleet/ssh" "$fleet/logs"
# The controller's virtualenv is made (cold: pip from PyPI) while the
# guests boot; both take most of a cold run.
"$QEMU_DIR/fleet/venv.sh" >"$fleet/venv.path" 2>"$fleet/logs/venv.log" &
venv_pid=$!

KLPCTL=${KLPCTL:-${KLPCTL_BIN:-$REPO_DIR/target/x86_64-unknown-linux-musl/release/klpctl}}
KLPCTL_DEVICE=${KLPCTL_DEVICE:-$REPO_DIR/target/device/x86_64-unknown-linux-musl/release/klpctl}
[ -x "$KLPCTL" ] || die "no klpctl at $KLPCTL (cargo build --release --target x86_64-unknown-linux-musl)"
[ -x "$KLPCTL_DEVICE" ] || die "no device klpctl at $KLPCTL_DEVICE"
export KLPCTL

# Kernels, modules and signed bundles: what prepare.sh makes, made here only
# when missing so the tier also runs on its own.
[ -s "$OUT_DIR/kernels/releases" ] || "$QEMU_DIR/fetch-kernels.sh" >/dev/null
r61=$(release_for 6.1)
r612=$(release_for 6.12)
[ -n "$r61" ] && [ -n "$r612" ] || die "the fleet needs the 6.1 and 6.12 kernels (qemu/fetch-kernels.sh)"
for r in "$r61" "$r612"; do
    [ -s "$OUT_DIR/build/$r/klp_cumul_v3.ko" ] || "$QEMU_DIR/build-modules.sh" "$r" >/dev/null
    [ -s "$OUT_DIR/bundles/$r/cumul_v3.klp" ] || "$QEMU_DIR/mkbundles.sh" "$r" >/dev/null
done

[ -s "$fleet/ssh/id_ed25519" ] \
    || ssh-keygen -q -t ed25519 -N '' -C klpctl-fleet -f "$fleet/ssh/id_ed25519"
for r in "$r61" "$r612"; do
    "$QEMU_DIR/fleet/mkguest.sh" "$r" "$fleet/ssh/id_ed25519.pub" "$fleet/$r.cpio.gz"
done
prep=$(date +%s.%N)

# Four guests: g4 is the one that goes away mid-run. Free ports on
# 127.0.0.1, asked of the kernel.
mapfile -t ports < <(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
for s in ss: print(s.getsockname()[1])')
names=(g1 g2 g3 g4)
rels=("$r61" "$r612" "$r61" "$r612")
series=(6.1 6.12 6.1 6.12)
pids=()
stop_guests() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop_guests EXIT
guests=$fleet/guests
: >"$guests"
for i in 0 1 2 3; do
    # vCPUs and TCG mode as qemu/smp-modes says for the series (6.12 needs
    # single-threaded TCG, see qemu/smp-evidence.md).
    read -r vcpus accel < <(awk -v s="${series[$i]}" '
        /^#/ || NF < 6 { next } ($1 == s || $1 == "*") { print $3, $4; exit }' "$QEMU_DIR/smp-modes")
    log "booting ${names[$i]}: ${rels[$i]}, $vcpus vCPUs, -accel $accel, ssh on 127.0.0.1:${ports[$i]}"
    qemu-system-x86_64 -accel "$accel" -m 512 -smp "$vcpus" -nographic -no-reboot \
        -kernel "$OUT_DIR/kernels/${rels[$i]}/vmlinuz" -initrd "$fleet/${rels[$i]}.cpio.gz" \
        -append "console=ttyS0 panic=-1 loglevel=4 no_timer_check" \
        -nic "user,model=e1000,hostfwd=tcp:127.0.0.1:${ports[$i]}-:22" \
        </dev/null >"$fleet/logs/${names[$i]}.log" 2>&1 &
    pids+=($!)
    printf '%s %s %s %s\n' "${names[$i]}" "${ports[$i]}" "${rels[$i]}" "$!" >>"$guests"
done

# SSH-ready: a command answers over SSH (dropbear is up and the key works).
ssh_opts=(-i "$fleet/ssh/id_ed25519" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
    -o LogLevel=ERROR -o ConnectTimeout=5 -o BatchMode=yes)
for i in 0 1 2 3; do
    ok=0
    for _ in $(seq 1 120); do
        if ssh "${ssh_opts[@]}" -p "${ports[$i]}" root@127.0.0.1 true 2>/dev/null; then
            ok=1
            break
        fi
        kill -0 "${pids[$i]}" 2>/dev/null || break
        sleep 1
    done
    [ "$ok" = 1 ] || { tail -n 20 "$fleet/logs/${names[$i]}.log" >&2; die "${names[$i]} never answered on SSH"; }
done
ready=$(date +%s.%N)
log "4 guests SSH-ready in $(awk -v a="$prep" -v b="$ready" 'BEGIN {printf "%.1f", b - a}') s"
wait "$venv_pid" || { cat "$fleet/logs/venv.log" >&2; die "could not make the Ansible virtualenv"; }
venv=$(cat "$fleet/venv.path")
venv_done=$(date +%s.%N)

set +e
KLPCTL_FLEET_VENV=$venv KLPCTL_DEVICE=$KLPCTL_DEVICE /usr/bin/python3 "$QEMU_DIR/fleet/check.py" \
    --repo "$REPO_DIR" --out "$fleet" --guests "$guests" --key "$fleet/ssh/id_ed25519"
rc=$?
set -e
end=$(date +%s.%N)
awk -v s="$start" -v p="$prep" -v r="$ready" -v v="$venv_done" -v e="$end" 'BEGIN {
    printf "FLEET-TIME total=%.1fs prepare=%.1fs boot-to-ssh=%.1fs venv-wait=%.1fs runs+report+browser=%.1fs\n",
        e - s, p - s, r - p, v - r, e - v }'
exit "$rc"
