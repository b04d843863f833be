# Copyright: klpctl contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading klpctl's stdout and exit code."""

from __future__ import annotations

import json
import unittest

from ansible_collections.klpctl.klpctl.plugins.module_utils.klpctl_remote import exit_code, json_lines, status_problem


class RemoteTest(unittest.TestCase):
    def test_json_lines_end_at_newline_only(self):
        doc = {"name": "a\u0085b\u2028c\u2029d\x1ce"}
        text = json.dumps(doc, ensure_ascii=False)
        self.assertEqual(json_lines("banner\r\n" + text + "\r\n"), [doc])

    def test_json_lines_objects_only(self):
        self.assertEqual(json_lines('[1]\n"x"\n{"a": 1\n{"b": 2}\n'), [{"b": 2}])

    def test_exit_code_worse_one_wins(self):
        self.assertEqual(exit_code(0, {"exit": 0}), 0)
        self.assertEqual(exit_code(139, {"exit": 0}), 139)
        self.assertEqual(exit_code(0, {"exit": 4}), 4)
        self.assertEqual(exit_code(3, {}), 3)
        self.assertIsNone(exit_code(0, {"exit": "0"}))
        self.assertIsNone(exit_code(0, {"exit": True}))

    def test_status_problem(self):
        self.assertIsNone(status_problem({"kernel": {}, "patches": [], "patch_level": []}))
        self.assertIsNotNone(status_problem({"kernel": "x"}))
        self.assertIsNotNone(status_problem({"kernel": {}, "patch_level": [{"cves": [1]}]}))


if __name__ == "__main__":
    unittest.main()
