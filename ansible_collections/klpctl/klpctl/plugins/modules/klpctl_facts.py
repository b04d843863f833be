#!/usr/bin/python
# Copyright: klpctl contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation only: klpctl_facts is an action plugin (plugins/action)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: klpctl_facts
short_description: What klpctl sees live on a host, as facts
description:
  - Runs C(klpctl status --json) and C(klpctl vex) on the target through its shell (no Python needed) and
    sets the facts C(klpctl_status) (kernel, patches, records, patch level, leftovers), C(klpctl_vex)
    (the OpenVEX document, or null when no live patch fixes a CVE) and C(klpctl_seen) (the controller's
    time, in seconds since the epoch).
  - A host without klpctl (for example in check mode, which does not install it) is not a failure
    here. C(klpctl_status) is then null and C(klpctl_missing) says why.
version_added: 0.1.0
author:
  - klpctl contributors (@klpctl)
options:
  klpctl_path:
    description: Where klpctl is on the target.
    type: str
    default: /usr/sbin/klpctl
  state_dir:
    description: Persistent state directory on the target, for the quarantine list.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Gather klpctl's view of the host
  klpctl.klpctl.klpctl_facts:

- name: Show the patch level
  ansible.builtin.debug:
    var: klpctl_status.patch_level
"""

RETURN = r"""
ansible_facts:
  description: The facts set.
  returned: success
  type: complex
  contains:
    klpctl_status:
      description: C(klpctl status --json).
      type: dict
      returned: success
    klpctl_vex:
      description: The OpenVEX document C(klpctl vex) prints, or null when there is none.
      type: dict
      returned: success
    klpctl_seen:
      description: When the status was read (controller clock, seconds since the epoch).
      type: int
      returned: success
    klpctl_missing:
      description: The shell's error when klpctl is not installed at O(klpctl_path); the other facts are then null.
      type: str
      returned: when klpctl is not found
"""
