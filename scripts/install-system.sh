#!/usr/bin/env bash
# Install the Debian packages SciBoard Gym needs (run as root on Debian 12): apt/*.txt always;
# apt/unsandboxed/*.txt (the apps and desktop on the host's own packages, for sandbox=False
# development) only with SCIBOARD_UNSANDBOXED=1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
lists=("$here"/apt/*.txt)
if [ "${SCIBOARD_UNSANDBOXED:-0}" = 1 ]; then
    lists+=("$here"/apt/unsandboxed/*.txt)
fi
packages=$(grep -hv '^\s*#' "${lists[@]}" | tr -s ' \n' ' ')
missing=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' $packages 2>/dev/null | awk '$1!="ii"{print $2}' || true)
# dpkg-query prints nothing for packages it has never heard of: compare counts.
installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' $packages 2>/dev/null | awk '$1=="ii"' | wc -l || true)
if [ "$installed" -eq "$(echo $packages | wc -w)" ] && [ -z "$missing" ]; then
    echo "[sciboard] Debian packages already installed"
    exit 0
fi
echo "[sciboard] installing Debian packages: $packages"
export DEBIAN_FRONTEND=noninteractive
# Wait for other apt/dpkg runs instead of failing on their lock.
apt-get -o DPkg::Lock::Timeout=900 update -q
apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends $packages
