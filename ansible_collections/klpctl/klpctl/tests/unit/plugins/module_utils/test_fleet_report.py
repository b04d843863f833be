# Copyright: klpctl contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report with what a damaged or hostile target can put in its
klpctl status: one host's garbage must not cost the fleet its report, and
no string from a target may become markup."""

from __future__ import annotations

import html.parser
import json
import unittest

from ansible_collections.klpctl.klpctl.plugins.module_utils.fleet_report import build, render_html

NOW = 1800000000


def status(name="klp_a", cves=("CVE-1",), when=1700000000):
    cves = cves if isinstance(cves, str) else list(cves)
    return {
        "kernel": {"release": "6.1.0-1-amd64", "build_id": "ab", "taint_flags": ""},
        "patches": [{"name": name, "enabled": True, "transition": False,
                     "record": {"stream": "s", "version": 1, "sha256": "aa", "keys": ["k"], "cves": cves,
                                "time": when, "state": "applied"}}],
        "patch_level": [{"stream": "s", "version": 1, "patch": name, "cves": cves}],
    }


class Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = set()
        self.attrs = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs.update(k for k, v in attrs)


def report(rows):
    doc = build(rows, now=NOW)
    page = render_html(doc)
    page.encode("utf-8")  # the report plugin writes it as UTF-8
    json.dumps(doc)
    return doc, page


class ReportTest(unittest.TestCase):
    def test_bytes_that_are_not_utf8(self):
        """klpctl writes them as lone surrogates \\udc80-\\udcff."""
        doc, page = report([("h1", status(name="klp_\udcff\udc80x", cves=["CVE-\udcfe"]), NOW, None)])
        self.assertIn("klp_\\xff\\x80x", page)
        self.assertEqual(doc["hosts"][0]["patches"][0]["name"], "klp_\udcff\udc80x")
        report([("h1", status(name="klp_\ud800"), NOW, {"msg": "\udfff", "rc": 1, "failed": True})])

    def test_times_that_are_no_times(self):
        for when in ("x", 10 ** 20, -10 ** 13, 1.5, True, None, float("nan")):
            doc, dummy = report([("h1", status(when=when), NOW, None)])
            self.assertIsNone(doc["hosts"][0]["cves_fixed"][0]["applied"], repr(when))
        last = {"bundles": [{"bundle": "a.klp", "ok": True, "cves": ["CVE-9"], "created": 10 ** 12}]}
        doc, dummy = report([("h1", None, None, last)])
        self.assertEqual(doc["cves"][0]["fix_available_since"], None)

    def test_cve_lists_that_are_not_lists_of_strings(self):
        doc, dummy = report([("h1", status(cves="CVE-1234"), NOW, None)])
        self.assertEqual(doc["cves"], [], "a string is not a list of its characters")
        doc, dummy = report([("h1", status(cves=[1, "CVE-2", None]), NOW, None)])
        self.assertEqual([c["cve"] for c in doc["cves"]], ["CVE-2"])

    def test_status_of_the_wrong_shape(self):
        for st in ({"kernel": None, "patches": None, "patch_level": None}, {"patches": [1, "x"]},
                   {"patch_level": [{"patch": ["x"], "cves": ["CVE-1"]}]}, "status", []):
            report([("h1", st, NOW, None), ("h2", status(), NOW, None)])
        report([("h1", None, None, {"bundles": "x", "results": [1], "msg": None}),
                ("h2", None, None, {"bundles": [{"cves": "CVE-1"}, 2]})])

    def test_hostile_strings_stay_text(self):
        evil = "<script>alert(1)</script><img src=x onerror=alert(1)>\"'><a href=http://evil/>"
        st = status(name=evil, cves=[evil])
        st["kernel"]["release"] = evil
        dummy, page = report([(evil, st, NOW, {"msg": evil, "rc": evil, "failed": True})])
        t = Tags()
        t.feed(page)
        self.assertEqual(t.tags & {"script", "img", "a", "iframe", "link"}, set())
        self.assertEqual({a for a in t.attrs if a.startswith("on")} | ({"src", "href"} & t.attrs), set())


if __name__ == "__main__":
    unittest.main()
