# Copyright: klpctl contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""klpctl_patch's Run against a fake klpctl: a script that answers each
subcommand from a scenario file and logs its argv. Commands go through a
real /bin/sh, as on a target, so quoting is tested too."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from ansible.errors import AnsibleActionFail
from ansible_collections.klpctl.klpctl.plugins.action.klpctl_patch import ARGUMENT_SPEC, Run

FAKE = r'''#!%s
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "argv.log"), "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
with open(os.path.join(here, "scenario.json")) as f:
    answer = json.load(f).get(sys.argv[1], {})
sys.stdout.buffer.write(answer.get("stdout", "").encode("utf-8", "surrogatepass"))
sys.stderr.write(answer.get("stderr", ""))
sys.exit(answer.get("rc", 0))
''' % sys.executable

KERNEL = {"release": "6.1.0-1-amd64", "machine": "x86_64", "build_id": "ab", "livepatch": True, "taint": 0,
          "taint_flags": ""}


def status(names=()):
    return {
        "kernel": KERNEL,
        "patches": [{"name": n, "enabled": True, "transition": False,
                     "record": {"stream": "s", "version": 1, "sha256": "aa", "cves": ["CVE-1"], "time": 1}}
                    for n in names],
        "patch_level": [{"stream": "s", "version": 1, "patch": n, "cves": ["CVE-1"]} for n in names],
        "leftover": [],
    }


def verify(bundle="a.klp"):
    return {"ok": True, "bundle": bundle, "manifest": {
        "name": "klp_a", "stream": "s", "version": 1, "release": KERNEL["release"], "arch": "x86_64",
        "build_id": "ab", "replace": False, "cves": ["CVE-1"], "created": 1, "payload_sha256": "aa"}}


def raw(doc):
    """DOC as klpctl writes it: UTF-8 as given, one line."""
    return json.dumps(doc, ensure_ascii=False) + "\n"


class FakeAction:
    """What Run needs of the action plugin, with /bin/sh as the target."""

    def __init__(self, tmpdir, check_mode=False):
        self.tmpdir = tmpdir
        self.check_mode = check_mode

    def remote(self, cmd):
        p = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, check=False)
        return p.returncode, p.stdout.decode("utf-8", "surrogateescape"), p.stderr.decode("utf-8", "surrogateescape")

    def put(self, local, remote):
        shutil.copyfile(local, remote)

    def find(self, path):
        return path


class PatchTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="klpctl-patch-test ")
        self.addCleanup(shutil.rmtree, self.dir)
        self.klpctl = os.path.join(self.dir, "klpctl")
        with open(self.klpctl, "w") as f:
            f.write(FAKE)
        os.chmod(self.klpctl, 0o755)
        self.bundle = os.path.join(self.dir, "a.klp")
        with open(self.bundle, "w") as f:
            f.write("bundle\n")
        self.remote_tmp = os.path.join(self.dir, "remote tmp")
        os.mkdir(self.remote_tmp)

    def scenario(self, **answers):
        base = {
            "status": {"stdout": raw(status())},
            "verify": {"stdout": raw(verify())},
            "apply": {"stdout": raw({"results": [{"bundle": "a.klp", "result": "applied"}], "changed": True,
                                     "exit": 0})},
        }
        base.update(answers)
        with open(os.path.join(self.dir, "scenario.json"), "w") as f:
            json.dump(base, f)

    def run_task(self, check_mode=False, **args):
        a = {k: v.get("default") for k, v in ARGUMENT_SPEC.items()}
        a.update(klpctl_path=self.klpctl, bundles=[self.bundle])
        a.update(args)
        return Run(FakeAction(self.remote_tmp, check_mode), a).run()

    def test_process_exit_beats_json_exit_zero(self):
        """klpctl killed or crashing after it printed "exit":0 failed."""
        self.scenario(apply={"stdout": raw({"results": [{"bundle": "a.klp", "result": "applied"}],
                                            "changed": True, "exit": 0}), "rc": 139})
        out = self.run_task()
        self.assertTrue(out["failed"])
        self.assertEqual(out["rc"], 139)
        self.assertIn("exited 139", out["msg"])

    def test_json_exit_that_is_not_a_number_fails(self):
        self.scenario(apply={"stdout": raw({"results": [], "changed": True, "exit": "0"})})
        with self.assertRaisesRegex(AnsibleActionFail, "names exit"):
            self.run_task()

    def test_failed_result_fails_even_with_exit_zero(self):
        self.scenario(apply={"stdout": raw({"results": [{"bundle": "a.klp", "result": "failed", "error": "x"}],
                                            "changed": False})})
        out = self.run_task()
        self.assertTrue(out["failed"])

    def test_every_documented_and_unknown_exit_code(self):
        for code in list(range(0, 12)) + [126, 255]:
            result = "applied" if code in (0, 10) else "failed"
            self.scenario(apply={"stdout": raw({"results": [{"bundle": "a.klp", "result": result, "exit": code,
                                                             "error": "e%d" % code}],
                                                "changed": code in (0, 10), "exit": code}),
                                 "stderr": "klpctl: e%d\n" % code, "rc": code})
            out = self.run_task()
            self.assertEqual((out["rc"], out["failed"]), (code, code not in (0, 10)), code)

    def test_unicode_line_separators_in_names(self):
        """U+0085, U+2028 and U+2029 are valid in klpctl's UTF-8 JSON:
        they must not cut an object in two."""
        for ch in ("\u0085", "\u2028", "\u2029"):
            name = "klp_a%sb" % ch
            self.scenario(status={"stdout": raw(status([name]))}, verify={"stdout": raw(verify("a%s.klp" % ch))})
            out = self.run_task()
            self.assertFalse(out["failed"], repr(ch))
            self.assertIn(name, out["diff"]["before"])

    def test_banner_before_the_json(self):
        """klpctl prints one object, last; a JSON-looking banner first is
        not klpctl's answer."""
        answer = raw({"results": [{"bundle": "a.klp", "result": "failed", "exit": 3, "error": "bad"}],
                      "changed": False, "exit": 3})
        self.scenario(apply={"stdout": '{"motd": "hello"}\n' + answer, "rc": 3})
        out = self.run_task()
        self.assertEqual((out["rc"], out["msg"]), (3, "a.klp: bad"))

    def test_malformed_status_fails_the_task_not_the_plugin(self):
        for doc in ({"kernel": None}, {"kernel": {}, "patches": "x"}, {"kernel": {}, "patches": [1]},
                    {"kernel": {}, "patch_level": [{"cves": "CVE-1"}]},
                    {"kernel": {}, "patches": [{"name": "p", "record": []}]}):
            self.scenario(status={"stdout": raw(doc)})
            with self.assertRaisesRegex(AnsibleActionFail, "^status: "):
                self.run_task()
        self.scenario(verify={"stdout": raw({"ok": True, "manifest": [], "bundle": "a.klp"})})
        self.run_task()  # a manifest that is not an object is no manifest

    def test_truncated_and_garbage_output(self):
        for text in ('{"results":[{"bundle":"a.klp","result":"appl', "\x00\udcff garbage\n", "[1,2]\n", ""):
            self.scenario(apply={"stdout": text})
            with self.assertRaisesRegex(AnsibleActionFail, "gave no JSON"):
                self.run_task()

    def test_hostile_names_reach_klpctl_as_single_words(self):
        odd = ["a b.klp", "q'uote.klp", 'd"q.klp', "$(touch pwned).klp", "`touch pwned`.klp", "-n.klp",
               "nl\nx.klp", "*.klp", "semi;touch pwned.klp"]
        bdir = os.path.join(self.dir, "bundles")
        os.mkdir(bdir)
        for n in odd:
            with open(os.path.join(bdir, n), "w") as f:
                f.write("x")
        self.scenario(apply={"stdout": raw({"results": [], "changed": False, "exit": 0})})
        cwd = os.getcwd()
        os.chdir(self.dir)
        self.addCleanup(os.chdir, cwd)
        self.run_task(bundles=[], bundle_dir=bdir, keyring="/k r;$(touch pwned)", state_dir="/s'`touch pwned`")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "pwned")))
        with open(os.path.join(self.dir, "argv.log")) as f:
            calls = [json.loads(line) for line in f]
        verified = sorted(os.path.basename(c[-1]) for c in calls if c[0] == "verify")
        self.assertEqual(verified, sorted(odd))
        self.assertIn(["status", "--json", "--state-dir", "/s'`touch pwned`"], calls)

    def check_installed(self, store, other_kernel=False):
        """Check mode, state=installed: klp_a live; the install dir holds
        STORE (name: bytes). Returns the result and what the dir holds
        after, which must be what it held before."""
        store_dir = os.path.join(self.dir, "store")
        shutil.rmtree(store_dir, ignore_errors=True)
        os.mkdir(store_dir)
        for name, data in store.items():
            with open(os.path.join(store_dir, name), "w") as f:
                f.write(data)
        v = verify()
        if other_kernel:
            v["manifest"]["release"] = "6.12.0-1-amd64"
        self.scenario(status={"stdout": raw(status(["klp_a"]))}, verify={"stdout": raw(v)})
        out = self.run_task(check_mode=True, state="installed", install_dir=store_dir)
        after = {n: open(os.path.join(store_dir, n)).read() for n in os.listdir(store_dir)}
        self.assertEqual(after, store, "check mode changed the install dir")
        with open(os.path.join(self.dir, "argv.log")) as f:
            self.assertEqual({json.loads(line)[0] for line in f}, {"status", "verify"})
        return out

    def test_check_mode_installed_sees_the_install_dir(self):
        """Live but not stored: the real run stores it (changed), so check
        mode must say it would change; stored byte for byte: ok."""
        self.assertTrue(self.check_installed({})["changed"])
        self.assertTrue(self.check_installed({"klp_a@6.1.0-1-amd64@ab@v1.klp": "old\n"})["changed"])
        out = self.check_installed({"klp_a@6.1.0-1-amd64@ab@v1.klp": "bundle\n"})
        self.assertEqual((out["changed"], out["failed"]), (False, False))

    def test_check_mode_installed_other_kernel_is_stored_not_failed(self):
        out = self.check_installed({}, other_kernel=True)
        self.assertEqual((out["changed"], out["failed"], out["rc"]), (True, False, 0))
        self.assertEqual(out["results"][0]["result"], "would store")


if __name__ == "__main__":
    unittest.main()
