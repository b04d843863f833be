# Copyright: klpctl contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin klpctl_facts: what klpctl sees live on a target with no
Python (klpctl status --json and the klpctl vex document), as facts."""

from __future__ import annotations

import json
import time

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible_collections.klpctl.klpctl.plugins.module_utils.klpctl_remote import (
    command,
    first_line,
    json_lines,
    status_problem,
)

ARGUMENT_SPEC = {
    "klpctl_path": {"type": "str", "default": "/usr/sbin/klpctl"},
    "state_dir": {"type": "str"},
}


class ActionModule(ActionBase):
    """See the module documentation in plugins/modules/klpctl_facts.py."""

    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        words = ["status", "--json"]
        if args["state_dir"]:
            words += ["--state-dir", args["state_dir"]]
        # Both in one round trip; a marker line splits the two outputs.
        cmd = "%s; echo '--klpctl-vex--'; %s" % (
            command(args["klpctl_path"], *words),
            command(args["klpctl_path"], "vex", "--no-wait"),
        )
        res = self._low_level_execute_command(cmd, sudoable=True)
        out = to_text(res.get("stdout", "")).replace("\r", "")
        # The marker is a line of its own: JSON never holds a raw newline,
        # so a name in the status that spells the marker cannot split it.
        status_out, dummy, vex_out = ("\n" + out).partition("\n--klpctl-vex--\n")
        status = json_lines(status_out)[-1:]
        if not status and res.get("rc") == 127:
            # No klpctl on the host yet (check mode does not install it):
            # a fact, not a failure.
            why = first_line(to_text(res.get("stderr", ""))) or "klpctl not found"
            result.update(
                changed=False,
                warnings=["klpctl not found at %s" % args["klpctl_path"]],
                ansible_facts={"klpctl_status": None, "klpctl_vex": None, "klpctl_seen": int(time.time()),
                               "klpctl_missing": why},
            )
            return result
        problem = status_problem(status[0]) if status else "no JSON"
        if problem:
            result.update(
                failed=True,
                rc=res.get("rc", 1),
                msg="klpctl status gave no usable JSON (%s): %s" % (problem, first_line(to_text(res.get("stderr", "")))),
            )
            return result
        vex = None
        text = vex_out.strip()
        if text:
            try:
                vex = json.loads(text)
            except ValueError:
                result.setdefault("warnings", []).append("klpctl vex printed something that is not JSON")
        result.update(
            changed=False,
            ansible_facts={
                "klpctl_status": status[0],
                "klpctl_vex": vex,
                # The controller's clock when this was seen: the report's
                # "as of" for the host.
                "klpctl_seen": int(time.time()),
            },
        )
        return result
