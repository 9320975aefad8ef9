#!/usr/bin/env bash
# One-shot set-up on a fresh Debian 12 machine (as root): Debian packages, the project's
# virtualenv in .venv (built on Debian's /usr/bin/python3) and the pinned desktop tree the
# sandboxed local desktops run in (cached under ~/.cache/sciboard/trees; a fresh build
# downloads and unpacks the apps' Debian 12 packages: a few minutes).
# SCIBOARD_UNSANDBOXED=1 also installs the apps on this host, for sandbox=False development.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
extras="${SCIBOARD_EXTRAS:-dev,agent,train,dist,rl}"
bash scripts/install-system.sh
if [ ! -x .venv/bin/python ]; then
    echo "[sciboard] creating .venv on /usr/bin/python3"
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)-${extras//,/_}"
if [ ! -e "$stamp" ]; then
    echo "[sciboard] installing Python packages (extras: $extras)"
    .venv/bin/pip install -q --upgrade pip
    # torch is pinned to the local CPU wheel for every install (never torchvision).
    .venv/bin/pip install -q -c constraints.txt -e ".[$extras]"
    rm -f .venv/.installed-*
    touch "$stamp"
fi
.venv/bin/python -m vm_images tree build
echo "[sciboard] ready: $root/.venv"
