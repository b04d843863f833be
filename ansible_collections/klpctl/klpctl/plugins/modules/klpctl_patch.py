#!/usr/bin/python
# Copyright: klpctl contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation only: klpctl_patch is an action plugin (plugins/action)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: klpctl_patch
short_description: Apply, disable, install or remove signed kernel live patches with klpctl
description:
  - Copies signed klpctl bundles (and, if asked, the static klpctl binary) to the target through the
    connection, then runs klpctl there and reports what its C(--json) output says.
  - The target needs no Python, only a POSIX shell and klpctl. Without sftp or scp on the target use
    C(ansible_ssh_transfer_method=piped), which needs only C(dd).
  - C(changed) and C(failed) follow klpctl's JSON; a patch that is already applied is C(ok).
    C(rc) is klpctl's exit code and C(msg) its one-line error. When C(klpctl status) shows other live
    patches after the run than before, the task is C(changed) whatever the JSON said.
version_added: 0.1.0
author:
  - klpctl contributors (@klpctl)
options:
  state:
    description:
      - V(applied) verifies and applies the bundles now (C(klpctl apply)).
      - V(disabled) disables the patches named in O(names), or those the bundles carry (C(klpctl disable)).
      - V(installed) stores the bundles in O(install_dir) and applies those for the running kernel (C(klpctl install)).
      - V(absent) removes the named patches from O(install_dir) and disables them (C(klpctl uninstall)).
    type: str
    choices: [applied, disabled, installed, absent]
    default: applied
  bundles:
    description: Bundle files on the controller, applied in this order.
    type: list
    elements: path
    default: []
  bundle_dir:
    description:
      - A directory of bundles on the controller. Every regular file in it is copied, and C(klpctl apply --dir)
        picks the bundles for the running kernel; the others are reported as skipped.
      - Mutually exclusive with O(bundles).
    type: path
  names:
    description: Patch (module) names for O(state=disabled) and O(state=absent).
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds klpctl waits for each transition (C(--timeout)); klpctl's default is 60.
    type: int
  keyring:
    description: Directory of trusted C(*.pub) keys on the target (C(--keyring)); default C(/etc/klpctl/keys.d).
    type: str
  state_dir:
    description: Persistent state directory on the target (C(--state-dir)), for rollback floors across reboots.
    type: str
  install_dir:
    description: Bundle directory on the target for O(state=installed) and O(state=absent).
    type: str
    default: /var/lib/klpctl/bundles
  klpctl_path:
    description: Where klpctl is on the target.
    type: str
    default: /usr/sbin/klpctl
  klpctl_src:
    description:
      - A static klpctl binary on the controller. When the target's O(klpctl_path) differs from it (by SHA-256),
        it is copied there first, which counts as a change. In check mode it is only copied to the task's
        temporary directory, to run the check.
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Verifies the bundles on the target and compares them with C(klpctl status); loads and writes nothing.
  diff_mode:
    support: full
    details: Shows the effective patch level before and after (predicted in check mode).
  platform:
    platforms: posix
notes:
  - "The target needs no Python: plays use C(gather_facts: false), and M(klpctl.klpctl.klpctl_facts) instead of fact gathering."
seealso:
  - module: klpctl.klpctl.klpctl_facts
  - module: klpctl.klpctl.klpctl_report
"""

EXAMPLES = r"""
- name: Apply the cumulative patch
  klpctl.klpctl.klpctl_patch:
    bundles:
      - bundles/fix_v3.klp
    timeout: 30

- name: Apply whatever fits each host's kernel, copying klpctl itself
  klpctl.klpctl.klpctl_patch:
    bundle_dir: "bundles/{{ kernel_release }}"
    klpctl_src: dist/klpctl

- name: Take the patch out again
  klpctl.klpctl.klpctl_patch:
    state: disabled
    names: [klp_fix_v3]
"""

RETURN = r"""
rc:
  description: klpctl's exit code (0 success, 3 bundle rejected, 4 not for this kernel, 7 transition reverted, ...).
  returned: always
  type: int
  sample: 4
msg:
  description: klpctl's one-line error for the first failed bundle, or what was done.
  returned: always
  type: str
  sample: "fix.klp: not for this kernel: release differs: bundle is for 6.1.0-57-amd64, running 6.12.118+deb12-amd64"
results:
  description: klpctl's per-bundle (or per-name) results, as its JSON gives them.
  returned: always
  type: list
  elements: dict
bundles:
  description: Each bundle as C(klpctl verify --json) saw it on the target (name, stream, version, cves, payload_sha256, ...).
  returned: always
  type: list
  elements: dict
kernel:
  description: The running kernel from C(klpctl status --json).
  returned: always
  type: dict
patch_level_before:
  description: The effective patch level before the task.
  returned: always
  type: list
  elements: dict
patch_level_after:
  description: The effective patch level after the task (predicted in check mode).
  returned: always
  type: list
  elements: dict
klpctl_installed:
  description: Whether the klpctl binary was copied to O(klpctl_path).
  returned: when O(klpctl_src) differed from the target's copy
  type: bool
"""
