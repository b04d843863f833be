#!/usr/bin/python
# Copyright: klpctl contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation only: klpctl_report is an action plugin (plugins/action)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: klpctl_report
short_description: Write the fleet report of which CVEs klpctl's live patches fix where
description:
  - Runs on the controller. Reads each host's C(klpctl_status) and C(klpctl_seen) facts
    (M(klpctl.klpctl.klpctl_facts)) and its registered M(klpctl.klpctl.klpctl_patch) result, and writes
    C(fleet-report.json) and C(fleet-report.html) (one self-contained page, no scripts, no network)
    into O(dest).
  - A CVE counts as fixed on a host when klpctl's effective patch level there names it. A host without
    status is listed as not reached, with the reason its last result gives.
  - The report is evidence of what was live when the run looked, not a certification.
version_added: 0.1.0
author:
  - klpctl contributors (@klpctl)
options:
  hosts:
    description: The inventory hosts to report on, in order.
    type: list
    elements: str
    required: true
  dest:
    description: Directory on the controller for the two files.
    type: path
    required: true
  result_var:
    description: The variable each host registered its M(klpctl.klpctl.klpctl_patch) result in.
    type: str
    default: klpctl_patch_result
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: none
    details: The report is written in check mode too; it describes the hosts and changes none of them.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Write the fleet report
  klpctl.klpctl.klpctl_report:
    hosts: "{{ groups['klpctl_fleet'] }}"
    dest: /srv/reports/{{ ansible_date_time.date | default('latest') }}
"""

RETURN = r"""
json:
  description: Path of fleet-report.json.
  returned: success
  type: str
html:
  description: Path of fleet-report.html.
  returned: success
  type: str
summary:
  description: The report's summary (hosts, reached, cves, fixed_everywhere, open, oldest_open_fix).
  returned: success
  type: dict
"""
