# Copyright: klpctl contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report: which CVEs klpctl's live patches fix on which hosts,
built from each host's klpctl status (klpctl_facts) and its last
klpctl_patch result, as JSON and as one self-contained HTML page.

A CVE counts as fixed on a host exactly when klpctl's effective patch level
there names it: a patch klpctl applied whose load finished, enabled in sysfs
with no transition running. Those are the claims klpctl vex makes."""

from __future__ import annotations

import datetime
import html

FORMAT = "klpctl-fleet-report/1"
DISCLAIMER = (
    "Evidence of what klpctl saw live on each host at the time of this run. "
    "It is not a certification: live patches do not survive a reboot, and a "
    "host may have changed since."
)


def iso(secs):
    """SECS since the epoch as UTC ISO 8601, or None. Times come from the
    targets' records and the bundles' manifests: one that is not a whole
    number of seconds from 1970 to the end of 9999 is no time at all, not
    a reason to lose the whole fleet's report."""
    if isinstance(secs, bool) or not isinstance(secs, int) or not 0 <= secs < 253402300800:
        return None
    try:
        return datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return None


def obj(x):
    """X if it is a JSON object, else an empty one."""
    return x if isinstance(x, dict) else {}


def objs(x):
    """The objects in X if it is a list, else none."""
    return [i for i in x if isinstance(i, dict)] if isinstance(x, list) else []


def strs(x):
    """The strings in X if it is a list (a CVE list), else none."""
    return [i for i in x if isinstance(i, str)] if isinstance(x, list) else []


def host_entry(name, status, seen, last):
    """One host: its kernel, patches, patch level and the CVEs fixed."""
    entry = {"host": name, "reached": seen is not None, "seen": iso(seen)}
    last = obj(last) if last is not None else None
    if last is not None:
        entry["last_run"] = {
            "rc": last.get("rc"),
            "changed": bool(last.get("changed")),
            "failed": bool(last.get("failed")),
            "unreachable": bool(last.get("unreachable")),
            "msg": last.get("msg", ""),
        }
    if not isinstance(status, dict):
        entry.update(kernel=None, patches=[], patch_level=[], cves_fixed=[], klpctl_missing=seen is not None)
        return entry
    k = obj(status.get("kernel"))
    entry["kernel"] = {"release": k.get("release"), "build_id": k.get("build_id"), "taint_flags": k.get("taint_flags")}
    patches = []
    for p in objs(status.get("patches")):
        rec = obj(p.get("record"))
        patches.append(
            {
                "name": p.get("name"),
                "enabled": p.get("enabled"),
                "transition": p.get("transition"),
                "stream": rec.get("stream"),
                "version": rec.get("version"),
                "payload_sha256": rec.get("sha256"),
                "signed_by": strs(rec.get("keys")),
                "cves": strs(rec.get("cves")),
                "applied": iso(rec.get("time")),
                "state": rec.get("state"),
            }
        )
    entry["patches"] = patches
    entry["patch_level"] = [dict(lvl, cves=strs(lvl.get("cves"))) for lvl in objs(status.get("patch_level"))]
    by_name = {p["name"]: p for p in patches if isinstance(p["name"], str)}
    fixed = []
    for lvl in entry["patch_level"]:
        p = by_name.get(lvl.get("patch"), {}) if isinstance(lvl.get("patch"), str) else {}
        for cve in lvl["cves"]:
            fixed.append(
                {
                    "cve": cve,
                    "patch": lvl.get("patch"),
                    "stream": lvl.get("stream"),
                    "version": lvl.get("version"),
                    "applied": p.get("applied"),
                    "payload_sha256": p.get("payload_sha256"),
                    "signed_by": p.get("signed_by", []),
                }
            )
    entry["cves_fixed"] = sorted(fixed, key=lambda f: f["cve"])
    return entry


def why_not(host, cve, last):
    """Why CVE is not fixed on this host, in one line."""
    run = host.get("last_run")
    named = [b for b in objs((last or {}).get("bundles")) if cve in strs(b.get("cves"))]
    if host.get("klpctl_missing"):
        return "klpctl is not installed on this host"
    if not host["reached"]:
        if run is None:
            # Ansible registers a result for an unreachable host too: no
            # result at all means no task ran there.
            return "not attempted in this run: the rollout stopped before this host's batch"
        if run["msg"]:
            return "unreachable: %s" % run["msg"]
        return "unreachable: no status from this host in this run"
    if named and run and run["failed"]:
        return "klpctl exit %s: %s" % (run["rc"], run["msg"])
    for b in named:
        for r in objs((last or {}).get("results")):
            if r.get("bundle") == b.get("bundle") and r.get("result") == "skipped":
                return "bundle %s skipped: %s: %s" % (b["bundle"], r.get("error", ""), r.get("detail", ""))
    level = ", ".join("%s v%s" % (lvl.get("stream"), lvl.get("version")) for lvl in host["patch_level"])
    return "no live patch on this host claims it (patch level: %s)" % (level or "none")


def build(hosts, now=None):
    """The report. HOSTS: list of (name, status or None, seen or None,
    last klpctl_patch result or None), in inventory order."""
    now = int(now if now is not None else datetime.datetime.now(datetime.timezone.utc).timestamp())
    entries = [host_entry(n, s, seen, last) for n, s, seen, last in hosts]
    lasts = {row[0]: row[3] for row in hosts}
    universe, created = set(), {}
    for e in entries:
        universe.update(f["cve"] for f in e["cves_fixed"])
    for last in lasts.values():
        for b in objs(obj(last).get("bundles")):
            for cve in strs(b.get("cves")):
                universe.add(cve)
                if b.get("ok") and iso(b.get("created")) is not None:
                    created[cve] = min(created.get(cve, b["created"]), b["created"])
    cves = []
    for cve in sorted(universe):
        fixed, not_fixed = [], []
        for e in entries:
            hit = [f for f in e["cves_fixed"] if f["cve"] == cve]
            if hit:
                keep = ("applied", "patch", "stream", "version", "payload_sha256", "signed_by")
                fixed.append(dict({"host": e["host"]}, **{k: hit[0][k] for k in keep}))
            else:
                not_fixed.append({"host": e["host"], "reason": why_not(e, cve, lasts.get(e["host"]))})
        applied = sorted(f["applied"] for f in fixed if f["applied"])
        since = [iso(created[cve])] if cve in created else []
        since += applied[:1]
        cves.append(
            {
                "cve": cve,
                "fixed": fixed,
                "not_fixed": not_fixed,
                "first_fixed": applied[0] if applied else None,
                "last_fixed": applied[-1] if applied else None,
                # When a fix for it was first known to this run: the signed
                # bundle's creation time, or the first host's apply.
                "fix_available_since": min(since) if since else None,
            }
        )
    open_fixes = [c for c in cves if c["not_fixed"] and c["fix_available_since"]]
    oldest = None
    if open_fixes:
        c = min(open_fixes, key=lambda c: c["fix_available_since"])
        t = datetime.datetime.strptime(c["fix_available_since"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc
        )
        oldest = {
            "cve": c["cve"],
            "fix_available_since": c["fix_available_since"],
            "age_days": round((now - t.timestamp()) / 86400, 2),
            "hosts": [n["host"] for n in c["not_fixed"]],
        }
    return {
        "format": FORMAT,
        "generated": iso(now),
        "statement": DISCLAIMER,
        "summary": {
            "hosts": len(entries),
            "reached": sum(1 for e in entries if e["reached"]),
            "cves": len(cves),
            "fixed_everywhere": sum(1 for c in cves if not c["not_fixed"]),
            "open": sum(1 for c in cves if c["not_fixed"]),
            "oldest_open_fix": oldest,
        },
        "cves": cves,
        "hosts": entries,
    }


CSS = """
body{font:14px/1.4 sans-serif;margin:24px;color:#111;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:24px 0 8px}
.note{color:#444;max-width:900px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{border:1px solid #bbb;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:24px}
.ok{background:#e3f4e3} .bad{background:#fbe3e0} .warn{background:#fff3cd}
table{border-collapse:collapse;width:100%;margin:4px 0 12px}
th,td{border:1px solid #bbb;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eee} #cves td:first-child{white-space:nowrap} code{font-size:12px;word-break:break-all}
ul{margin:0;padding-left:18px}
"""


def e(x):
    """X as HTML text. klpctl writes a byte that is not UTF-8 as a lone
    surrogate (\\udc80-\\udcff); it is shown as \\xNN, and any other lone
    surrogate as its escape, so the page is always valid UTF-8."""
    text = "" if x is None else str(x)
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return html.escape(text)


def render_html(doc):
    """One self-contained page: summary first, then the per-host table."""
    s = doc["summary"]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>klpctl fleet report %s</title>" % e(doc["generated"]),
        "<style>%s</style></head><body>" % CSS,
        "<h1>Live patch fleet report</h1>",
        '<p class="note">Generated %s by klpctl\'s Ansible collection. %s</p>' % (e(doc["generated"]), e(doc["statement"])),
        '<section id="summary"><h2>Summary</h2><div class="cards">',
        '<div class="card"><b>%d</b>hosts (%d reached)</div>' % (s["hosts"], s["reached"]),
        '<div class="card ok"><b>%d</b>CVEs fixed on every host</div>' % s["fixed_everywhere"],
        '<div class="card %s"><b>%d</b>CVEs open on some host</div>' % ("bad" if s["open"] else "ok", s["open"]),
    ]
    o = s["oldest_open_fix"]
    if o:
        out.append(
            '<div class="card warn" id="oldest-open-fix"><b>%s</b>oldest open fix: available since %s '
            "(%.1f days), open on %s</div>" % (e(o["cve"]), e(o["fix_available_since"]), o["age_days"], e(", ".join(o["hosts"])))
        )
    else:
        out.append('<div class="card ok" id="oldest-open-fix"><b>none</b>no open fix</div>')
    out.append("</div>")
    out.append('<table id="cves"><thead><tr><th>CVE</th><th>fixed</th><th>not fixed</th>'
               "<th>fixed on (when, payload sha256)</th><th>not fixed on (why)</th></tr></thead><tbody>")
    for c in doc["cves"]:
        cls = "ok" if not c["not_fixed"] else "bad"
        fixed = "".join(
            "<li>%s at %s by %s v%s <code>%s</code></li>"
            % (e(f["host"]), e(f["applied"]), e(f["patch"]), e(f["version"]), e(f["payload_sha256"]))
            for f in c["fixed"]
        )
        nf = "".join("<li>%s: %s</li>" % (e(n["host"]), e(n["reason"])) for n in c["not_fixed"])
        out.append(
            '<tr class="%s"><td>%s</td><td>%d</td><td>%d</td><td><ul>%s</ul></td><td><ul>%s</ul></td></tr>'
            % (cls, e(c["cve"]), len(c["fixed"]), len(c["not_fixed"]), fixed, nf)
        )
    if not doc["cves"]:
        out.append('<tr><td colspan="5">No CVE is named by any live patch or bundle in this run.</td></tr>')
    out.append("</tbody></table></section>")
    out.append('<section id="hosts"><h2>Hosts</h2><table id="host-table"><thead><tr><th>host</th><th>kernel</th>'
               "<th>patches</th><th>patch level</th><th>CVEs fixed (applied)</th><th>this run</th></tr></thead><tbody>")
    for h in doc["hosts"]:
        run = h.get("last_run")
        runtxt = ""
        if run:
            word = "unreachable" if run["unreachable"] else "failed" if run["failed"] else "changed" if run["changed"] else "ok"
            runtxt = "%s (rc %s) %s" % (word, e(run["rc"]), e(run["msg"]))
        if h["kernel"] is None:
            why = "klpctl is not installed" if h.get("klpctl_missing") else "no status: host not reached"
            out.append('<tr class="bad"><td>%s</td><td colspan="4">%s</td><td>%s</td></tr>' % (e(h["host"]), why, runtxt))
            continue
        patches = "".join(
            "<li>%s (%s v%s)%s</li>"
            % (e(p["name"]), e(p["stream"]), e(p["version"]), "" if p["enabled"] and not p["transition"] else " <b>not live</b>")
            for p in h["patches"]
        )
        level = "".join("<li>%s v%s</li>" % (e(lvl.get("stream")), e(lvl.get("version"))) for lvl in h["patch_level"])
        fixed = "".join("<li>%s (%s)</li>" % (e(f["cve"]), e(f["applied"])) for f in h["cves_fixed"])
        k = h["kernel"] or {}
        out.append(
            "<tr><td>%s</td><td>%s<br><code>%s</code></td><td><ul>%s</ul></td><td><ul>%s</ul></td>"
            "<td><ul>%s</ul></td><td>%s</td></tr>"
            % (e(h["host"]), e(k.get("release")), e(k.get("build_id")), patches or "none", level or "none",
               fixed or "none", runtxt)
        )
    out.append("</tbody></table></section></body></html>")
    return "\n".join(out) + "\n"
