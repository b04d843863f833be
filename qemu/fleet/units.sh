#!/bin/bash
# The klpctl.klpctl collection's unit tests (tests/unit/): its plugins
# against a fake klpctl and /bin/sh on this machine, and the playbook with
# local connections. No guests; a few seconds. Uses the venv of venv.sh.
#
# usage: units.sh       exit 0 only when every test passes
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_pkg python3-venv
venv=$("$QEMU_DIR/fleet/venv.sh")
cd "$REPO_DIR"
mapfile -t tests < <(find ansible_collections/klpctl/klpctl/tests/unit -name 'test_*.py' | sort)
[ "${#tests[@]}" -gt 0 ] || die "no unit tests found"
log "collection unit tests: ${#tests[@]} files"
PYTHONWARNINGS=ignore ANSIBLE_COLLECTIONS_PATH=$REPO_DIR "$venv/bin/python" -m unittest -v "${tests[@]}"
