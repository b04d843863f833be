# Copyright: klpctl contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/patch-fleet.yml over four local hosts, each with its own fake
klpctl: rolling batches, max_fail_percentage, and the report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from ansible_collections.klpctl.klpctl.tests.unit.plugins.action.test_klpctl_patch import FAKE, raw, status, verify

COLL = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
REPO = os.path.abspath(os.path.join(COLL, "..", "..", ".."))
PLAYBOOK = os.path.join(COLL, "playbooks", "patch-fleet.yml")
HOSTS = ("h1", "h2", "h3", "h4")


class FleetPlaybookTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="klpctl-fleet-test ")
        self.addCleanup(shutil.rmtree, self.dir)
        with open(os.path.join(self.dir, "a.klp"), "w") as f:
            f.write("bundle\n")

    def host(self, name, apply_rc):
        d = os.path.join(self.dir, name)
        os.mkdir(d)
        with open(os.path.join(d, "klpctl"), "w") as f:
            f.write(FAKE)
        os.chmod(os.path.join(d, "klpctl"), 0o755)
        ok = apply_rc == 0
        answers = {
            "status": {"stdout": raw(status(["klp_a"] if ok else []))},
            "verify": {"stdout": raw(verify())},
            "apply": {"rc": apply_rc, "stdout": raw({
                "results": [{"bundle": "a.klp", "result": "applied" if ok else "failed", "exit": apply_rc,
                             "error": "" if ok else "bundle rejected: bad signature"}],
                "changed": ok, "exit": apply_rc})},
        }
        with open(os.path.join(d, "scenario.json"), "w") as f:
            json.dump(answers, f)

    def playbook(self, fail):
        for h in HOSTS:
            self.host(h, 3 if h in fail else 0)
        inv = os.path.join(self.dir, "inventory.ini")
        with open(inv, "w") as f:
            f.write("[klpctl_fleet]\n%s\n[klpctl_fleet:vars]\nansible_connection=local\n"
                    "ansible_python_interpreter=%s\n" % ("\n".join(HOSTS), sys.executable))
        report = os.path.join(self.dir, "report")
        extra = {"klpctl_bundles": [os.path.join(self.dir, "a.klp")], "klpctl_report_dir": report,
                 "klpctl_path": os.path.join(self.dir, "{{ inventory_hostname }}", "klpctl")}
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=REPO, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False",
                   ANSIBLE_RETRY_FILES_ENABLED="False", ANSIBLE_REMOTE_TEMP=os.path.join(self.dir, "remote-tmp"),
                   ANSIBLE_LOCAL_TEMP=os.path.join(self.dir, "local-tmp"), PYTHONWARNINGS="ignore")
        bindir = os.path.dirname(sys.executable)
        p = subprocess.run([os.path.join(bindir, "ansible-playbook"), "-i", inv, PLAYBOOK, "-e", json.dumps(extra)],
                           capture_output=True, text=True, env=env, check=False)
        path = os.path.join(report, "fleet-report.json")
        if not os.path.exists(path):
            self.fail("no fleet report; ansible-playbook exit %d:\n%s" % (p.returncode, p.stdout[-3000:]))
        with open(path) as f:
            return p, json.load(f)

    def test_rollout_stopped_by_a_failed_batch_still_writes_the_report(self):
        """The first batch (h1, h2) fails whole: Ansible stops the rollout
        and runs no later play. The evidence of why must exist anyway."""
        p, rep = self.playbook(fail={"h1", "h2"})
        self.assertNotEqual(p.returncode, 0)
        hosts = {h["host"]: h for h in rep["hosts"]}
        self.assertEqual(sorted(hosts), list(HOSTS))
        for h in ("h1", "h2"):
            self.assertEqual(hosts[h]["last_run"]["rc"], 3)
            self.assertTrue(hosts[h]["reached"])
        reasons = {n["host"]: n["reason"] for n in rep["cves"][0]["not_fixed"]}
        self.assertTrue(reasons["h1"].startswith("klpctl exit 3: "), reasons)
        for h in ("h3", "h4"):
            self.assertFalse(hosts[h]["reached"])
            self.assertIn("not attempted", reasons[h])
        self.assertNotIn("h3", p.stdout.split("PLAY RECAP")[-1])

    def test_half_a_batch_failing_goes_on(self):
        """One host of each batch of two fails: 50 % is not more than the
        default max_fail_percentage of 50, so every batch runs."""
        p, rep = self.playbook(fail={"h1", "h3"})
        fixed = sorted(f["host"] for f in rep["cves"][0]["fixed"])
        self.assertEqual(fixed, ["h2", "h4"])
        runs = {h["host"]: h["last_run"] for h in rep["hosts"]}
        self.assertEqual({h: (r["failed"], r["changed"]) for h, r in runs.items()},
                         {"h1": (True, False), "h2": (False, True), "h3": (True, False), "h4": (False, True)})
        self.assertNotEqual(p.returncode, 0)
        # The per-batch report step is not counted against a host.
        for h, changed in (("h1", 0), ("h2", 1), ("h3", 0), ("h4", 1)):
            self.assertRegex(p.stdout, r"(?m)^%s\s+: ok=\d+\s+changed=%d\s" % (h, changed))


if __name__ == "__main__":
    unittest.main()
