#!/usr/bin/env bash
# Install the Debian packages SciBoard Gym needs (run as root on Debian 12).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
packages=$(grep -hv '^\s*#' "$here"/apt/*.txt | tr -s ' \n' ' ')
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
