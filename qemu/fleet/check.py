#!/usr/bin/python3
"""Drive the fleet guests through the collection's playbook and check each
run against the guests' own sysfs (read over SSH, not from Ansible), then
render the fleet report in headless Chromium and look at the screenshot.

Prints one "FLEET <check> PASS|FAIL ..." line per check; exits 1 if any
failed. Called by qemu/fleet/run.sh, which boots the guests."""

import argparse
import html.parser
import json
import os
import re
import struct
import subprocess
import sys
import time
import zlib

FAILS = []
TIMES = []


def check(name, ok, detail=""):
    print("FLEET %s %s%s" % (name, "PASS" if ok else "FAIL", (" " + detail) if detail else ""), flush=True)
    if not ok:
        FAILS.append(name)


class Fleet:
    def __init__(self, args):
        self.repo = args.repo
        self.out = args.out
        self.key = args.key
        self.venv = os.environ["KLPCTL_FLEET_VENV"]
        self.device = os.environ["KLPCTL_DEVICE"]
        self.guests = []
        with open(args.guests) as f:
            for line in f:
                name, port, release, pid = line.split()
                self.guests.append({"name": name, "port": int(port), "release": release, "pid": int(pid)})
        self.by_name = {g["name"]: g for g in self.guests}
        self.bundles = os.path.join(self.repo, "target/qemu/bundles")
        self.inventory = os.path.join(self.out, "inventory.ini")
        self.write_inventory()
        self.runs = 0

    def write_inventory(self):
        lines = ["[klpctl_fleet]"]
        for g in self.guests:
            other = [o["release"] for o in self.guests if o["release"] != g["release"]][0]
            lines.append("%s ansible_host=127.0.0.1 ansible_port=%d klpctl_release=%s klpctl_other_release=%s"
                         % (g["name"], g["port"], g["release"], other))
        lines += ["", "[live]"] + [g["name"] for g in self.guests if g["name"] != "g4"]
        lines += [
            "",
            "[all:vars]",
            "ansible_user=root",
            "ansible_ssh_private_key_file=%s" % self.key,
            "ansible_ssh_common_args=-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            # dropbear has neither sftp nor an scp OpenSSH 9 can talk to.
            "ansible_ssh_transfer_method=piped",
            "ansible_ssh_use_tty=false",
            "klpctl_bundle_root=%s" % self.bundles,
            "klpctl_binary=%s" % self.device,
            "",
        ]
        with open(self.inventory, "w") as f:
            f.write("\n".join(lines))

    # --- the guests, seen directly over SSH ----------------------------
    def ssh(self, g, cmd):
        r = subprocess.run(
            ["ssh", "-i", self.key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-p", str(g["port"]),
             "root@127.0.0.1", cmd],
            capture_output=True, text=True, timeout=60,
        )
        return r.stdout

    def sysfs(self, g):
        """{patch: enabled} from /sys/kernel/livepatch, and the livepatch
        modules in /proc/modules."""
        out = self.ssh(g, "for d in /sys/kernel/livepatch/*; do [ -d \"$d\" ] && echo \"P ${d##*/} $(cat $d/enabled) $(cat $d/transition)\"; done;"
                          " awk '$1 ~ /^klp_/ && $1 != \"klp_target\" {print \"M\", $1}' /proc/modules")
        patches, modules = {}, set()
        for line in out.splitlines():
            w = line.split()
            if w[:1] == ["P"] and len(w) == 4:
                patches[w[1]] = (w[2], w[3])
            elif w[:1] == ["M"] and len(w) == 2:
                modules.add(w[1])
        return patches, modules

    def vex_cves(self, g):
        out = self.ssh(g, "/usr/sbin/klpctl vex --no-wait 2>/dev/null")
        if not out.strip():
            return set()
        return {s["vulnerability"]["name"] for s in json.loads(out)["statements"] if s.get("status") == "fixed"}

    def expect_live(self, run, want):
        """WANT: {host: set of live patch names}; each must be enabled, with
        no transition, and be the only livepatch modules loaded."""
        for name, patches in sorted(want.items()):
            got, mods = self.sysfs(self.by_name[name])
            live = {p for p, (en, tr) in got.items() if en == "1" and tr == "0"}
            ok = live == patches and set(got) == patches and mods == patches
            check("%s-sysfs-%s" % (run, name), ok, "live=%s sysfs=%s modules=%s want=%s"
                  % (sorted(live), sorted(got), sorted(mods), sorted(patches)))

    # --- Ansible -------------------------------------------------------
    def playbook(self, run, extra, check_mode=False, on_output=None):
        env = dict(os.environ)
        env.update(
            ANSIBLE_COLLECTIONS_PATH=self.repo,
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_HOST_KEY_CHECKING="False",
            ANSIBLE_RETRY_FILES_ENABLED="False",
            ANSIBLE_LOCALHOST_WARNING="False",
            PYTHONWARNINGS="ignore",
        )
        report = os.path.join(self.out, "report-%s" % run)
        cmd = [os.path.join(self.venv, "bin/ansible-playbook"), "-i", self.inventory, "--diff",
               os.path.join(self.repo, "ansible_collections/klpctl/klpctl/playbooks/patch-fleet.yml"),
               "-e", json.dumps(dict(extra, klpctl_report_dir=report))]
        if check_mode:
            cmd.append("--check")
        t = time.time()
        log = os.path.join(self.out, "logs", "ansible-%s.log" % run)
        with open(log, "w") as f:
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
            lines = []
            for line in p.stdout:
                f.write(line)
                lines.append(line)
                if on_output:
                    on_output(line)
            p.wait()
        TIMES.append((run, time.time() - t))
        text = "".join(lines)
        recap = {}
        for m in re.finditer(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", text, re.M):
            recap[m.group(1)] = {"ok": int(m.group(2)), "changed": int(m.group(3)),
                                 "unreachable": int(m.group(4)), "failed": int(m.group(5))}
        fatal = {}
        for m in re.finditer(r"^fatal: \[(\w+)\]: (FAILED|UNREACHABLE)! => (\{.*\})$", text, re.M):
            try:
                fatal.setdefault(m.group(1), json.loads(m.group(3)))
            except ValueError:
                fatal.setdefault(m.group(1), {"raw": m.group(3)})
        rep = None
        jpath = os.path.join(report, "fleet-report.json")
        if os.path.exists(jpath):
            with open(jpath) as f:
                rep = json.load(f)
        return {"rc": p.returncode, "text": text, "recap": recap, "fatal": fatal, "report": rep, "dir": report,
                "log": log}


def bundles_var(path):
    """klpctl_bundles for every host: PATH under bundles/<its release>/."""
    return {"klpctl_bundles": ["{{ klpctl_bundle_root }}/{{ klpctl_release }}/%s" % path]}


def fixed_map(rep):
    return {c["cve"]: sorted(f["host"] for f in c["fixed"]) for c in rep["cves"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--guests", required=True)
    ap.add_argument("--key", required=True)
    fl = Fleet(ap.parse_args())
    allh = [g["name"] for g in fl.guests]

    # 1. First run: klpctl is copied and cumul v1 applied, changed everywhere.
    r = fl.playbook("1-apply", bundles_var("cumul_v1.klp"))
    check("1-changed-everywhere", r["rc"] == 0 and all(r["recap"].get(h, {}).get("changed") == 1 and
                                                        r["recap"][h]["failed"] == 0 for h in allh), str(r["recap"]))
    fl.expect_live("1", {h: {"klp_cumul_v1"} for h in allh})
    rep = r["report"]
    check("1-report", rep is not None and fixed_map(rep) == {"CVE-0000-1001": allh, "CVE-0000-1002": allh},
          str(rep and fixed_map(rep)))

    # 2. Second run: nothing to do, ok everywhere.
    r = fl.playbook("2-idempotent", bundles_var("cumul_v1.klp"))
    check("2-ok-everywhere", r["rc"] == 0 and all(r["recap"].get(h, {}).get("changed") == 0 and
                                                   r["recap"][h]["ok"] >= 2 for h in allh), str(r["recap"]))
    check("2-already-applied", r["report"] is not None and all(
        h["last_run"]["msg"] == "cumul_v1.klp: already applied" for h in r["report"]["hosts"]),
        str([h.get("last_run") for h in (r["report"] or {}).get("hosts", [])]))
    fl.expect_live("2", {h: {"klp_cumul_v1"} for h in allh})

    # 3. Check mode: cumul v2 would change every host; nothing is loaded.
    r = fl.playbook("3-check", bundles_var("cumul_v2.klp"), check_mode=True)
    check("3-check-would-change", r["rc"] == 0 and all(r["recap"].get(h, {}).get("changed") == 1 for h in allh),
          str(r["recap"]))
    check("3-check-diff", r["text"].count("+stream cumul version 2 (klp_cumul_v2)") == len(allh)
          and r["text"].count("-stream cumul version 1 (klp_cumul_v1)") == len(allh), "see " + r["log"])
    fl.expect_live("3", {h: {"klp_cumul_v1"} for h in allh})

    # 4. g1 gets the other kernel's bundle (exit 4); the others go on to v2.
    extra = {"klpctl_bundles": ["{{ klpctl_bundle_root }}/{{ klpctl_other_release if inventory_hostname == 'g1'"
                                " else klpctl_release }}/cumul_v2.klp"]}
    r = fl.playbook("4-other-kernel", extra)
    f1 = r["fatal"].get("g1", {})
    check("4-g1-exit-4", f1.get("rc") == 4 and "not for this kernel" in f1.get("msg", ""), str(f1)[:300])
    check("4-rest-changed", all(r["recap"].get(h, {}).get("changed") == 1 and r["recap"][h]["failed"] == 0
                                for h in allh[1:]), str(r["recap"]))
    fl.expect_live("4", {"g1": {"klp_cumul_v1"}, **{h: {"klp_cumul_v2"} for h in allh[1:]}})
    rep = r["report"]
    why = [n["reason"] for c in (rep or {}).get("cves", []) if c["cve"] == "CVE-0000-1003" for n in c["not_fixed"]]
    check("4-report-why", rep is not None and fixed_map(rep).get("CVE-0000-1003") == allh[1:]
          and len(why) == 1 and why[0].startswith("klpctl exit 4: ") and "not for this kernel" in why[0], str(why))

    # 5. A tampered bundle fails on every host with exit 3; nothing loads.
    # All hosts in one batch: in rolling batches Ansible stops the rollout
    # once a whole batch fails, and the later batches would not be tried.
    r = fl.playbook("5-tampered", dict(bundles_var("bad/tampered.klp"), klpctl_serial=len(allh)))
    check("5-exit-3-everywhere", all(r["fatal"].get(h, {}).get("rc") == 3 and
                                     r["fatal"][h].get("msg", "").startswith("tampered.klp: ") for h in allh),
          str({h: (r["fatal"].get(h, {}).get("rc"), r["fatal"].get(h, {}).get("msg", "")[:80]) for h in allh}))
    fl.expect_live("5", {"g1": {"klp_cumul_v1"}, **{h: {"klp_cumul_v2"} for h in allh[1:]}})

    # 6. g4 goes away during the run (its QEMU is killed as soon as the
    # first batch reports): unreachable, and the others go on to v3.
    g4 = fl.by_name["g4"]
    killed = []

    def kill_g4(line):
        if not killed and re.match(r"^(changed|ok|fatal): \[g[12]\]", line):
            os.kill(g4["pid"], 9)
            killed.append(time.time())

    r = fl.playbook("6-unreachable", bundles_var("cumul_v3.klp"), on_output=kill_g4)
    check("6-g4-killed-mid-run", bool(killed))
    check("6-g4-unreachable", r["recap"].get("g4", {}).get("unreachable") == 1, str(r["recap"].get("g4")))
    check("6-rest-changed", all(r["recap"].get(h, {}).get("changed") == 1 and r["recap"][h]["failed"] == 0
                                for h in allh[:3]), str(r["recap"]))
    fl.expect_live("6", {h: {"klp_cumul_v3"} for h in allh[:3]})

    # 8. The report lists exactly what the guests show, per CVE: the CVEs
    # each guest's own klpctl vex claims, for patches sysfs shows live.
    rep = r["report"]
    seen = {}
    for h in allh[:3]:
        for cve in fl.vex_cves(fl.by_name[h]):
            seen.setdefault(cve, []).append(h)
    got = {c: hs for c, hs in fixed_map(rep).items() if hs} if rep else None
    check("8-report-matches-guests", got == seen and bool(seen), "report=%s guests=%s" % (got, seen))
    g4e = [h for h in (rep or {}).get("hosts", []) if h["host"] == "g4"]
    check("8-report-g4-not-reached", bool(g4e) and not g4e[0]["reached"] and all(
        any(n["host"] == "g4" and n["reason"].startswith("unreachable") for n in c["not_fixed"]) for c in rep["cves"]),
        str(g4e)[:300])
    shas = {h: {p["name"]: p["payload_sha256"] for p in e["patches"]} for e in (rep or {}).get("hosts", []) for h in [e["host"]]}
    guest_sha = {}
    for h in allh[:3]:
        out = fl.ssh(fl.by_name[h], "/usr/sbin/klpctl status --json")
        guest_sha[h] = {p["name"]: (p.get("record") or {}).get("sha256") for p in json.loads(out)["patches"]}
    check("8-report-payload-sha256", all(shas.get(h) == guest_sha[h] for h in allh[:3]), str(guest_sha))
    check("8-report-oldest-open-fix", rep is not None and rep["summary"]["oldest_open_fix"] is not None
          and rep["summary"]["oldest_open_fix"]["hosts"] == ["g4"], str(rep and rep["summary"]))
    shot(fl, r["dir"], rep, "report-6")

    # 7. state: disabled takes the patch out everywhere that is left.
    r = fl.playbook("7-disabled", {"klpctl_state": "disabled", "klpctl_names": ["klp_cumul_v3"], "klpctl_hosts": "live"})
    check("7-changed", r["rc"] == 0 and all(r["recap"].get(h, {}).get("changed") == 1 for h in allh[:3]),
          str(r["recap"]))
    fl.expect_live("7", {h: set() for h in allh[:3]})
    check("7-vex-empty", all(not fl.vex_cves(fl.by_name[h]) for h in allh[:3]))
    rep = r["report"]
    check("7-report-nothing-fixed", rep is not None and all(not h["cves_fixed"] and not h["patch_level"]
                                                             for h in rep["hosts"]) and len(rep["hosts"]) == 3)

    for name, secs in TIMES:
        print("FLEET-TIME run %s %.1fs" % (name, secs))
    print("FLEET-DONE %d failed" % len(FAILS))
    return 1 if FAILS else 0


# --- the report in a real browser --------------------------------------
class Structure(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.order, self.rows, self.scripts, self.external, self.table = [], {}, 0, [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        for k in ("src", "href"):
            if a.get(k):
                self.external.append(a[k])
        if tag in ("section", "table") and a.get("id"):
            self.order.append(a["id"])
        if tag == "table":
            self.table = a.get("id")
        if tag == "tr" and self.table:
            self.rows[self.table] = self.rows.get(self.table, 0) + 1


def png_pixels(path):
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB/RGBA PNG."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype = hdr[0], hdr[1], hdr[2], hdr[3]
    assert depth == 8 and ctype in (2, 6), "unexpected PNG type %d/%d" % (depth, ctype)
    bpp = 3 if ctype == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        ft, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def shot(fl, d, rep, name):
    path = os.path.join(d, "fleet-report.html")
    if not os.path.exists(path) or rep is None:
        check("report-html-%s" % name, False, "no report at " + path)
        return
    with open(path) as f:
        page = f.read()
    s = Structure()
    s.feed(page)
    ok = (s.order[:2] == ["summary", "cves"] and "hosts" in s.order and s.order.index("hosts") > s.order.index("cves")
          and s.rows.get("cves") == len(rep["cves"]) + 1 and s.rows.get("host-table") == len(rep["hosts"]) + 1
          and s.scripts == 0 and not s.external and "not a certification" in page)
    check("report-html-%s" % name, ok, "order=%s rows=%s scripts=%d external=%s" % (s.order, s.rows, s.scripts, s.external))
    png = os.path.join(fl.out, "%s.png" % name)
    if os.path.exists(png):
        os.remove(png)
    t = time.time()
    # No network: --no-sandbox because the suite runs as root; a profile of
    # its own so a stale lock elsewhere cannot stop it.
    r = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--user-data-dir=" + os.path.join(fl.out, "chromium-profile"), "--screenshot=" + png,
                        "--window-size=1200,1000", "file://" + path], capture_output=True, text=True, timeout=120)
    TIMES.append(("chromium", time.time() - t))
    if not os.path.exists(png):
        check("report-screenshot-%s" % name, False, "chromium exit %d: %s" % (r.returncode, r.stderr[-300:]))
        return
    w, h, bpp, rows = png_pixels(png)
    # Not blank: most of the page is white, but text, borders and the
    # coloured summary cards must be there, and the red of the open CVE
    # rows (#fbe3e0) and the green of the fixed ones (#e3f4e3) both.
    colours, nonwhite = set(), 0
    for row in rows:
        for x in range(0, w * bpp, bpp):
            px = row[x:x + 3]
            colours.add(px)
            if px != b"\xff\xff\xff":
                nonwhite += 1
    share = nonwhite / float(w * h)
    check("report-screenshot-%s" % name, w == 1200 and h == 1000 and 0.02 < share < 0.9 and len(colours) > 20
          and b"\xfb\xe3\xe0" in colours and b"\xe3\xf4\xe3" in colours,
          "%s %dx%d non-white=%.1f%% colours=%d" % (png, w, h, 100 * share, len(colours)))


if __name__ == "__main__":
    sys.exit(main())
