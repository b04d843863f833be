#!/bin/bash
# ansible-lint and ansible-test sanity over the klpctl.klpctl collection,
# with the venv of venv.sh. ansible-test's own venvs and caches live under
# $CACHE_DIR/ansible-test-home (it keeps them in $HOME), and its pip
# bootstrap, which it would download from a host this machine cannot
# reach, is get-pip-offline.py.
#
# usage: lint.sh        exit 0 only when both are clean
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_pkg python3-pip-whl python3-venv
venv=$("$QEMU_DIR/fleet/venv.sh")
coll=$REPO_DIR/ansible_collections/klpctl/klpctl
export PYTHONWARNINGS=ignore ANSIBLE_COLLECTIONS_PATH=$REPO_DIR
home=$CACHE_DIR/ansible-test-home
mkdir -p "$home"
rc=0
log "ansible-lint"
(cd "$coll" && PATH=$venv/bin:$PATH "$venv/bin/ansible-lint" --offline --nocolor -q) || rc=1
pipver=$("$venv/bin/python" -c '
import ansible_test._internal.python_requirements as r; print(r.PIP_VERSION)' 2>/dev/null || true)
[ -n "$pipver" ] || pipver=24.2
getpip=$home/.ansible/test/cache/get_pip_${pipver//./_}.py
mkdir -p "$(dirname "$getpip")"
cmp -s "$QEMU_DIR/fleet/get-pip-offline.py" "$getpip" 2>/dev/null \
    || cp "$QEMU_DIR/fleet/get-pip-offline.py" "$getpip"
log "ansible-test sanity"
(cd "$coll" && HOME=$home "$venv/bin/ansible-test" sanity --python 3.11 --venv --color no) || rc=1
exit "$rc"
