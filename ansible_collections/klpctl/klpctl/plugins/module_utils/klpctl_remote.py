# Copyright: klpctl contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers the klpctl action plugins share: building klpctl command lines
and reading klpctl's JSON. They run on the controller only; the target runs
nothing but klpctl and a POSIX shell."""

from __future__ import annotations

import json
import shlex


def quote(word):
    """One shell word, for the target's POSIX shell."""
    return shlex.quote(str(word))


def command(klpctl, *words):
    """A klpctl command line, every word quoted."""
    return " ".join(quote(w) for w in (klpctl,) + words)


def json_lines(text):
    """Every JSON object in TEXT, one per line; other lines (a shell's
    carriage returns, a banner) are ignored.

    Lines end at "\n" only: klpctl writes UTF-8 as given, so a name may
    hold U+0085, U+2028 or U+2029, which str.splitlines() would take for
    line ends and cut the object in two."""
    found = []
    for line in text.split("\n"):
        line = line.strip(" \t\r")
        if not line.startswith("{"):
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            found.append(doc)
    return found


def exit_code(rc, doc):
    """klpctl's exit code from the process's RC and the JSON document's
    "exit". When they disagree the worse one wins: klpctl killed or
    crashing after it printed "exit":0 has not succeeded. None when the
    JSON names an exit that is not an integer and the process said 0."""
    said = doc.get("exit", rc)
    if rc:
        return rc
    if isinstance(said, bool) or not isinstance(said, int):
        return None
    return said


def status_problem(doc):
    """None if DOC has the shape of klpctl status --json, else what is
    wrong. What a target prints is untrusted: a damaged or hostile klpctl
    must fail the task, not crash the plugin or mislead the report."""
    if not isinstance(doc.get("kernel"), dict):
        return "no kernel object"
    for key in ("patches", "patch_level"):
        items = doc.get(key, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            return "%s is not a list of objects" % key
    for p in doc.get("patches", []):
        if p.get("record") is not None and not isinstance(p.get("record"), dict):
            return "a patch record is not an object"
    for lvl in doc.get("patch_level", []):
        cves = lvl.get("cves", [])
        if not isinstance(cves, list) or not all(isinstance(c, str) for c in cves):
            return "a patch level's cves is not a list of strings"
    return None


def first_line(text):
    """The first non-empty line of TEXT: klpctl's one-line error."""
    for line in text.split("\n"):
        line = line.strip()
        if line:
            return line
    return ""


def patch_level_text(status):
    """klpctl's effective patch level as lines of text, for --diff."""
    if not status:
        return "(unknown: no status)\n"
    lines = []
    for lvl in status.get("patch_level", []):
        cves = ",".join(lvl.get("cves", [])) or "no CVEs"
        lines.append(
            "stream %s version %s (%s), fixes %s"
            % (lvl.get("stream"), lvl.get("version"), lvl.get("patch"), cves)
        )
    return "\n".join(lines or ["(no live patches)"]) + "\n"


def live_patch(status, name):
    """The patch NAME as status --json shows it, or None."""
    for p in (status or {}).get("patches", []):
        if p.get("name") == name:
            return p
    return None


def for_this_kernel(manifest, kernel):
    """None if the manifest names the running kernel, else why not (the
    same checks apply makes, in its words)."""
    if manifest.get("release") != kernel.get("release"):
        return "release differs: bundle is for %s, running %s" % (
            manifest.get("release"),
            kernel.get("release"),
        )
    if manifest.get("arch") and manifest.get("arch") != kernel.get("machine"):
        return "architecture differs: bundle is for %s, running %s" % (
            manifest.get("arch"),
            kernel.get("machine"),
        )
    bid = manifest.get("build_id")
    if bid and bid != kernel.get("build_id"):
        return "build-id differs: bundle is for %s, running %s" % (bid, kernel.get("build_id"))
    return None
