"""What the builder writes into an image's root filesystem, and the boot contract the provider relies on.

The VM boots straight into a systemd service that runs the guest agent
(``python3 -m sciboard_guest``). The agent starts its own Xvfb + openbox + D-Bus +
AT-SPI desktop and listens on the VM-only user network (10.0.2.15), which QEMU
forwards to a 127.0.0.1 port on the host. Per-VM inputs arrive through QEMU's
fw_cfg (read-only files under /sys/firmware/qemu_fw_cfg in the guest):

- ``opt/sciboard/token``        the per-VM token the agent requires on every request
- ``opt/sciboard/env``          ``SCIBOARD_SCREEN=WxH`` (a systemd EnvironmentFile)
- ``opt/sciboard/guest.tar.gz`` the host's ``sciboard_guest`` package
"""

from __future__ import annotations

import subprocess
from pathlib import Path

GUEST_ADDRESS = "10.0.2.15"
GUEST_PORT = 8765
FW_CFG_TOKEN = "opt/sciboard/token"
FW_CFG_ENV = "opt/sciboard/env"
FW_CFG_CODE = "opt/sciboard/guest.tar.gz"
KERNEL_CMDLINE = "root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1 loglevel=4 systemd.show_status=1"

_FW = "/sys/firmware/qemu_fw_cfg/by_name"

SERVICE = f"""[Unit]
Description=SciBoard guest agent (desktop + token-protected HTTP on the VM-only network)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStartPre=/sbin/modprobe qemu_fw_cfg
ExecStartPre=/bin/mkdir -p /run/sciboard/code
ExecStartPre=/bin/tar -xzf {_FW}/{FW_CFG_CODE}/raw -C /run/sciboard/code
EnvironmentFile={_FW}/{FW_CFG_ENV}/raw
Environment=PYTHONPATH=/run/sciboard/code LANG=C.UTF-8 SCIBOARD_READY_SCALE=1
ExecStart=/usr/bin/python3 -m sciboard_guest --bind {GUEST_ADDRESS} --port {GUEST_PORT} \\
    --token-file {_FW}/{FW_CFG_TOKEN}/raw --workdir /var/lib/sciboard/desktop --screen ${{SCIBOARD_SCREEN}}
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
"""

NETWORK = f"""[Match]
Name=eth0

[Network]
Address={GUEST_ADDRESS}/24
LinkLocalAddressing=no
IPv6AcceptRA=no
"""

FILES = {
    "etc/hostname": "sciboard\n",
    "etc/hosts": "127.0.0.1 localhost\n127.0.1.1 sciboard\n",
    "etc/fstab": "/dev/vda / ext4 rw,noatime,errors=remount-ro 0 1\n",
    "etc/systemd/system/sciboard-guest.service": SERVICE,
    "etc/systemd/network/10-sciboard.network": NETWORK,
    "etc/systemd/journald.conf.d/sciboard.conf": "[Journal]\nStorage=volatile\n",
}
ENABLE = ["sciboard-guest.service", "systemd-networkd.service", "systemd-networkd-wait-online.service"]
#: Timers that would wake up mid-episode and steal CPU, and services the agent does not need
#: (no logins, no system bus) that cost a minute of boot under TCG. Missing ones are skipped.
MASK = ["apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer", "man-db.timer",
        "dpkg-db-backup.timer", "systemd-tmpfiles-clean.timer", "serial-getty@ttyS0.service",
        "getty@tty1.service", "systemd-logind.service", "dbus.service", "dbus.socket",
        "systemd-user-sessions.service", "systemd-update-utmp.service", "systemd-update-utmp-runlevel.service"]


def configure(root: Path) -> None:
    """Write the guest configuration into the root filesystem at ``root`` and enable its units."""
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    subprocess.run(["chroot", str(root), "systemctl", "enable", *ENABLE], check=True, capture_output=True)
    subprocess.run(["chroot", str(root), "systemctl", "set-default", "multi-user.target"], check=True,
                   capture_output=True)
    for unit in MASK:  # best effort: not every unit exists in every image
        subprocess.run(["chroot", str(root), "systemctl", "mask", unit], check=False, capture_output=True)
