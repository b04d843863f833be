#!/bin/bash
# The controller's Ansible: ansible-core and ansible-lint from PyPI in a
# virtualenv under the shared cache, keyed by the pinned versions below, so
# a warm run reuses it and a fresh machine builds it (about 15 s).
#
# usage: venv.sh
# stdout: the virtualenv's directory. Progress goes to stderr.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

# The newest ansible-core that runs on Debian 12's Python 3.11 (2.20 needs
# 3.12), and the ansible-lint of the same time.
ANSIBLE_CORE=2.19.14
ANSIBLE_LINT=26.10.1

need_pkg python3-venv
venv=$CACHE_DIR/venv/ansible-core-$ANSIBLE_CORE-lint-$ANSIBLE_LINT
build() {
    [ -e "$venv/.complete" ] && return 0
    # A venv records its own path in its scripts, so it is built in place;
    # .complete marks a finished one, and a half-made one is started over.
    rm -rf "$venv"
    log "creating $venv (ansible-core $ANSIBLE_CORE, ansible-lint $ANSIBLE_LINT)"
    /usr/bin/python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check \
        "ansible-core==$ANSIBLE_CORE" "ansible-lint==$ANSIBLE_LINT" >&2 \
        || die "pip install of ansible-core/ansible-lint failed"
    : >"$venv/.complete"
}
mkdir -p "$CACHE_DIR/venv"
with_cache_lock venv build
printf '%s\n' "$venv"
