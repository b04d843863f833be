# Copyright: klpctl contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin klpctl_report: write fleet-report.json and
fleet-report.html on the controller from the hosts' klpctl facts and their
last klpctl_patch results."""

from __future__ import annotations

import json
import os
import tempfile

from ansible.plugins.action import ActionBase
from ansible_collections.klpctl.klpctl.plugins.module_utils.fleet_report import build, render_html

ARGUMENT_SPEC = {
    "hosts": {"type": "list", "elements": "str", "required": True},
    "dest": {"type": "path", "required": True},
    "result_var": {"type": "str", "default": "klpctl_patch_result"},
}


def write_atomic(path, text):
    d = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".fleet-report.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


class ActionModule(ActionBase):
    """See the module documentation in plugins/modules/klpctl_report.py."""

    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        hostvars = (task_vars or {}).get("hostvars", {})
        rows = []
        for name in args["hosts"]:
            hv = hostvars[name] if name in hostvars else {}
            status = hv.get("klpctl_status") if hasattr(hv, "get") else None
            seen = hv.get("klpctl_seen") if hasattr(hv, "get") else None
            last = hv.get(args["result_var"]) if hasattr(hv, "get") else None
            rows.append((name, status, seen, dict(last) if last else None))
        doc = build(rows)
        os.makedirs(args["dest"], exist_ok=True)
        jpath = os.path.join(args["dest"], "fleet-report.json")
        hpath = os.path.join(args["dest"], "fleet-report.html")
        write_atomic(jpath, json.dumps(doc, indent=1, sort_keys=True) + "\n")
        write_atomic(hpath, render_html(doc))
        result.update(changed=True, json=jpath, html=hpath, summary=doc["summary"])
        return result
