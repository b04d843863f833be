# Copyright: klpctl contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin klpctl_patch: verify, apply, disable, install or remove
signed klpctl bundles on a target that has no Python.

Everything runs on the controller. The target only receives files through
the connection (_transfer_file; with ssh_transfer_method=piped it needs just
dd) and runs klpctl through its shell (_low_level_execute_command).
klpctl's --json output decides changed, failed, rc and msg."""

from __future__ import annotations

import hashlib
import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible_collections.klpctl.klpctl.plugins.module_utils.klpctl_remote import (
    command,
    exit_code,
    first_line,
    for_this_kernel,
    json_lines,
    live_patch,
    patch_level_text,
    quote,
    status_problem,
)

ARGUMENT_SPEC = {
    "state": {"type": "str", "default": "applied", "choices": ["applied", "disabled", "installed", "absent"]},
    "bundles": {"type": "list", "elements": "path", "default": []},
    "bundle_dir": {"type": "path"},
    "names": {"type": "list", "elements": "str", "default": []},
    "timeout": {"type": "int"},
    "keyring": {"type": "str"},
    "state_dir": {"type": "str"},
    "install_dir": {"type": "str", "default": "/var/lib/klpctl/bundles"},
    "klpctl_path": {"type": "str", "default": "/usr/sbin/klpctl"},
    "klpctl_src": {"type": "path"},
}

# klpctl's exit code for "applied and live, but the record was not saved":
# the patch is in, so Ansible reports it changed with a warning.
EXIT_UNSAVED = 10


class ActionModule(ActionBase):
    """See the module documentation in plugins/modules/klpctl_patch.py."""

    TRANSFERS_FILES = True
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # ActionBase.run made the remote tmp dir (TRANSFERS_FILES)
        dummy, args = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC,
            mutually_exclusive=[("bundles", "bundle_dir")],
        )
        try:
            result.update(Run(self, args).run())
        except AnsibleActionFail as e:
            result.update(failed=True, msg=to_text(e))
        finally:
            # The tmp dir ActionBase.run made, not a second one of our own.
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    # Small doors into ActionBase for Run.
    def remote(self, cmd):
        res = self._low_level_execute_command(cmd, sudoable=True)
        return res.get("rc", 1), to_text(res.get("stdout", "")), to_text(res.get("stderr", ""))

    def put(self, local, remote):
        self._transfer_file(local, remote)

    def find(self, path):
        return self._find_needle("files", path)

    @property
    def check_mode(self):
        return bool(self._task.check_mode)

    @property
    def tmpdir(self):
        return self._connection._shell.tmpdir


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


class Run:
    """One klpctl_patch task on one host."""

    def __init__(self, action, args):
        self.a = action
        self.args = args
        self.klpctl = args["klpctl_path"]
        self.warnings = []

    # --- on the target -------------------------------------------------
    def sh(self, cmd, what):
        rc, out, err = self.a.remote(cmd)
        if rc == 127 or (rc != 0 and not out.strip() and "not found" in err):
            raise AnsibleActionFail("%s: cannot run klpctl at %s: %s" % (what, self.klpctl, first_line(err)))
        return rc, out, err

    def klpctl_json(self, what, *words):
        rc, out, err = self.sh(command(self.klpctl, *words), what)
        docs = json_lines(out)
        if not docs:
            raise AnsibleActionFail("%s: klpctl gave no JSON (exit %d): %s" % (what, rc, first_line(err)))
        # klpctl prints one object, last: anything before it (a banner
        # from the target's shell) is not klpctl's.
        doc = docs[-1]
        code = exit_code(rc, doc)
        if code is None:
            raise AnsibleActionFail("%s: klpctl's JSON names exit %r" % (what, doc.get("exit")))
        if code != doc.get("exit", code):
            # Killed or crashed after it wrote its JSON: not what it said.
            err = "klpctl exited %d, but its JSON says exit %s: %s" % (code, doc.get("exit"), first_line(err))
        doc["exit"] = code
        return code, doc, err

    def status(self):
        words = ["status", "--json"]
        if self.args["state_dir"]:
            words += ["--state-dir", self.args["state_dir"]]
        rc, doc, err = self.klpctl_json("status", *words)
        problem = status_problem(doc)
        if rc or problem:
            raise AnsibleActionFail("status: klpctl exit %d: %s" % (rc, problem or first_line(err)))
        return doc

    # --- files from the controller -------------------------------------
    def local_bundles(self):
        if self.args["bundle_dir"]:
            d = self.a.find(self.args["bundle_dir"])
            if not os.path.isdir(d):
                raise AnsibleActionFail("bundle_dir %s is not a directory" % d)
            files = sorted(os.path.join(d, n) for n in os.listdir(d))
            return [f for f in files if os.path.isfile(f)]
        return [self.a.find(b) for b in self.args["bundles"]]

    def push_klpctl(self):
        """Copy the controller's klpctl when the target's differs. In check
        mode it goes to the tmp dir only, so the check can run it."""
        src = self.args["klpctl_src"]
        if not src:
            return False
        src = self.a.find(src)
        want = sha256_file(src)
        dummy, out, dummy = self.a.remote("sha256sum %s 2>/dev/null" % quote(self.klpctl))
        if out.split()[:1] == [want]:
            return False
        tmp = "%s/klpctl" % self.a.tmpdir
        self.a.put(src, tmp)
        if self.a.check_mode:
            self.sh("chmod 0700 %s" % quote(tmp), "chmod")
            self.klpctl = tmp
            return True
        dst = self.klpctl
        rc, dummy, err = self.a.remote(
            "mkdir -p %s && chmod 0755 %s && mv -f %s %s"
            % (quote(os.path.dirname(dst) or "/"), quote(tmp), quote(tmp), quote(dst))
        )
        if rc != 0:
            raise AnsibleActionFail("cannot install klpctl at %s: %s" % (dst, first_line(err)))
        return True

    def push_bundles(self):
        local = self.local_bundles()
        self.local = local
        names = [os.path.basename(p) for p in local]
        if len(set(names)) != len(names):
            raise AnsibleActionFail("two bundles share a file name: %s" % ", ".join(names))
        rdir = "%s/bundles" % self.a.tmpdir
        self.sh("mkdir -p %s" % quote(rdir), "mkdir")
        remote = []
        for p in local:
            r = "%s/%s" % (rdir, os.path.basename(p))
            self.a.put(p, r)
            remote.append(r)
        return rdir, remote

    def verify(self, remote):
        """klpctl verify --json of every bundle, in one round trip."""
        if not remote:
            return []
        words = ["verify", "--json"]
        if self.args["keyring"]:
            words += ["--keyring", self.args["keyring"]]
        loop = "for b in %s; do %s \"$b\"; done" % (" ".join(quote(r) for r in remote), command(self.klpctl, *words))
        dummy, out, dummy = self.sh(loop, "verify")
        docs = json_lines(out)
        if len(docs) != len(remote):
            raise AnsibleActionFail("verify: %d bundles, %d answers" % (len(remote), len(docs)))
        return docs

    def common(self, timeout=True):
        words = []
        if timeout and self.args["timeout"] is not None:
            words += ["--timeout", str(self.args["timeout"])]
        if self.args["keyring"]:
            words += ["--keyring", self.args["keyring"]]
        if self.args["state_dir"]:
            words += ["--state-dir", self.args["state_dir"]]
        return words

    # --- the task ------------------------------------------------------
    def run(self):
        state = self.args["state"]
        if state in ("applied", "installed") and not (self.args["bundles"] or self.args["bundle_dir"]):
            raise AnsibleActionFail("state=%s needs bundles or bundle_dir" % state)
        pushed = self.push_klpctl()
        before = self.status()
        rdir, remote = self.push_bundles()
        checked = self.verify(remote)
        bundles = [summary(r, v) for r, v in zip(remote, checked)]

        if state in ("applied", "installed"):
            if not self.a.check_mode:
                out = self.apply(state, rdir, remote)
            elif state == "installed":
                out = self.check_install(before, bundles)
            else:
                out = self.check_apply(before, bundles)
        else:
            names = self.args["names"] or [b["name"] for b in bundles if b.get("name")]
            if not names:
                raise AnsibleActionFail("state=%s needs names, or bundles to take them from" % state)
            out = self.check_disable(before, names) if self.a.check_mode else self.disable(state, names)

        after = out.pop("status_after", None) or (before if self.a.check_mode else self.status())
        if not self.a.check_mode and live_set(before) != live_set(after):
            # What the kernel shows wins: a run that changed the live
            # patches changed the host, whatever klpctl's JSON said.
            out["changed"] = True
        if pushed:
            out["changed"] = True
            out["klpctl_installed"] = not self.a.check_mode
        out.update(
            bundles=bundles,
            kernel=before.get("kernel", {}),
            patch_level_before=before.get("patch_level", []),
            patch_level_after=after.get("patch_level", []),
            diff={
                "before_header": "patch level",
                "after_header": "patch level (predicted)" if self.a.check_mode else "patch level",
                "before": patch_level_text(before),
                "after": patch_level_text(after),
            },
        )
        if self.warnings:
            out["warnings"] = self.warnings
        return out

    def stored(self):
        """The bundles in install_dir, by name and digest."""
        d = quote(self.args["install_dir"])
        dummy, out, dummy = self.a.remote("cd %s 2>/dev/null && sha256sum -- * 2>/dev/null" % d)
        return sorted(out.split("\n"))

    def apply(self, state, rdir, remote):
        if state == "installed":
            d = self.args["install_dir"]
            rc, dummy, err = self.a.remote("mkdir -p %s" % quote(d))
            if rc != 0:
                raise AnsibleActionFail("cannot create install_dir %s: %s" % (d, first_line(err)))
            stored = self.stored()
        words = ["install", *remote, "--dir", self.args["install_dir"]] if state == "installed" else ["apply"]
        if state == "applied":
            words += ["--dir", rdir] if self.args["bundle_dir"] else remote
        code, doc, err = self.klpctl_json("apply", *(words + ["--json"] + self.common()))
        results = doc.get("results", [])
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            raise AnsibleActionFail("apply: klpctl's JSON has no list of results (exit %d)" % code)
        for r in results:
            # The copy's name in the remote tmp dir means nothing to the
            # operator: name the bundle as the controller does.
            r["bundle"] = os.path.basename(r.get("bundle", ""))
        failed = [r for r in results if r.get("result") == "failed"]
        if code == EXIT_UNSAVED:
            self.warnings.append(first_line(err) or "applied, but klpctl could not save its state")
        changed = bool(doc.get("changed"))
        if state == "installed":
            # klpctl install stores the bundle again even when the same
            # bytes are there and says "changed": what counts is whether
            # the stored set changed (and the live set, checked in run()).
            changed = stored != self.stored()
        return {
            "changed": changed,
            # A bundle that failed fails the task, whatever the exit says.
            "failed": code not in (0, EXIT_UNSAVED) or bool(failed),
            "rc": code,
            "msg": failure_msg(failed, err) if failed or code not in (0, EXIT_UNSAVED) else done_msg(results),
            "results": results,
        }

    def check_install(self, before, bundles):
        """What install would do: apply what is for this kernel, and store
        every bundle whose stored copy (NAME@RELEASE[@BUILDID]@vVERSION.klp, see
        docs/install.md) is missing or differs, also one for another
        kernel of this architecture, which install stores without applying."""
        out = self.check_apply(before, bundles)
        stored = {}
        for line in self.stored():
            words = line.split(None, 1)
            if len(words) == 2:
                stored[words[1]] = words[0]
        kernel = before.get("kernel", {})
        for b, path, r in zip(bundles, self.local, out["results"]):
            if not b["ok"] or not b.get("name") or not b.get("release"):
                continue
            why = for_this_kernel(b, kernel)
            if why and why.startswith("architecture"):
                continue  # install refuses it too (exit 4)
            build_id = "@" + b["build_id"] if b.get("build_id") else ""
            name = "%s@%s%s@v%s.klp" % (b["name"], b["release"], build_id, b.get("version"))
            if stored.get(name) == sha256_file(path):
                continue
            if why:
                r.clear()
                r.update(bundle=b["bundle"], result="would store", detail=why)
            elif r["result"] == "already applied":
                r["result"] = "would store"
        failed = [r for r in out["results"] if r["result"] == "failed"]
        code = failed[0]["exit"] if failed else 0
        out.update(
            changed=any(r["result"] in ("would apply", "would store") for r in out["results"]),
            failed=bool(code),
            rc=code,
            msg=failure_msg(failed, "") if failed else done_msg(out["results"]),
        )
        return out

    def check_apply(self, before, bundles):
        """What apply would do, from verify and status alone."""
        kernel = before.get("kernel", {})
        results, code = [], 0
        for b in bundles:
            if not b["ok"]:
                r = {"bundle": b["bundle"], "result": "failed", "exit": b["exit"], "error": b["error"]}
            elif for_this_kernel(b, kernel):
                r = {"bundle": b["bundle"], "result": "failed", "exit": 4, "error": "not for this kernel",
                     "detail": for_this_kernel(b, kernel)}
            else:
                p = live_patch(before, b["name"])
                same = p and p.get("enabled") and (p.get("record") or {}).get("sha256") == b["payload_sha256"]
                r = {"bundle": b["bundle"], "result": "already applied" if same else "would apply"}
            if r["result"] == "failed" and self.args["bundle_dir"]:
                r["result"] = "skipped"  # apply --dir skips what it cannot use
            elif r["result"] == "failed" and not code:
                code = r["exit"]
            results.append(r)
        failed = [r for r in results if r["result"] == "failed"]
        return {
            "changed": any(r["result"] == "would apply" for r in results),
            "failed": bool(code),
            "rc": code,
            "msg": failure_msg(failed, "") if failed else done_msg(results),
            "results": results,
            "status_after": predicted(before, bundles, results),
        }

    def disable(self, state, names):
        results, code, changed = [], 0, False
        for n in names:
            if state == "absent":
                words = ["uninstall", n, "--dir", self.args["install_dir"]]
            else:
                words = ["disable", n]
            words += ["--json"]
            if self.args["timeout"] is not None:
                words += ["--timeout", str(self.args["timeout"])]
            if state == "absent":
                words += self.common(timeout=False)
            dummy, doc, err = self.klpctl_json(state, *words)
            doc.setdefault("name", n)
            if doc.get("exit") and not doc.get("error") or err.startswith("klpctl exited"):
                doc["error"] = first_line(err)
            results.append(doc)
            changed = changed or bool(doc.get("changed"))
            code = code or doc["exit"]
        bad = [r for r in results if r.get("exit")]
        return {
            "changed": changed,
            "failed": bool(code),
            "rc": code,
            "msg": "; ".join("%s: %s" % (r["name"], r.get("error", "")) for r in bad)
            or "; ".join("%s: %s" % (r["name"], r["result"]) for r in results),
            "results": results,
        }

    def check_disable(self, before, names):
        results = [{"name": n, "result": "would disable" if live_patch(before, n) else "not applied"} for n in names]
        after = dict(before)
        after["patch_level"] = [lvl for lvl in before.get("patch_level", []) if lvl.get("patch") not in names]
        return {
            "changed": any(r["result"] == "would disable" for r in results),
            "failed": False,
            "rc": 0,
            "msg": "; ".join("%s: %s" % (r["name"], r["result"]) for r in results),
            "results": results,
            "status_after": after,
        }


def live_set(status):
    """The patches sysfs shows, with whether each is enabled."""
    return sorted((p.get("name"), p.get("enabled"), p.get("transition")) for p in status.get("patches", []))


def summary(remote, doc):
    """One bundle as verify --json saw it, flattened for the report."""
    m = doc.get("manifest")
    m = m if isinstance(m, dict) else {}
    out = {
        "bundle": os.path.basename(remote),
        "ok": bool(doc.get("ok")),
        "exit": doc.get("exit", 0),
        "error": doc.get("error", ""),
    }
    for k in ("name", "stream", "version", "release", "build_id", "arch", "replace", "cves", "created",
              "payload_sha256"):
        out[k] = m.get(k)
    if not isinstance(out["cves"], list) or not all(isinstance(c, str) for c in out["cves"]):
        out["cves"] = []
    return out


def predicted(before, bundles, results):
    """The patch level check mode expects after the apply."""
    after = dict(before)
    level = list(before.get("patch_level", []))
    for b, r in zip(bundles, results):
        if r["result"] != "would apply":
            continue
        if b.get("replace"):
            level = []
        level = [lvl for lvl in level if lvl.get("stream") != b["stream"]]
        level.append({"stream": b["stream"], "version": b["version"], "patch": b["name"], "cves": b["cves"]})
    after["patch_level"] = level
    return after


def failure_msg(failed, err):
    """klpctl's one-line error for the first failed bundle."""
    if failed:
        r = failed[0]
        detail = (": " + r["detail"]) if r.get("detail") else ""
        return "%s: %s%s" % (r.get("bundle"), r.get("error", "failed"), detail)
    return first_line(err) or "klpctl failed"


def done_msg(results):
    return "; ".join("%s: %s" % (os.path.basename(r.get("bundle", "")), r.get("result")) for r in results) or "nothing to do"
