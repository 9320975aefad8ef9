"""The libvirt domain template of a SciBoard VM.

Direct kernel boot of the image's kernel + initrd, a copy-on-write qcow2 overlay
as the only disk, the serial console to a file, no display device. Networking is
QEMU's user-mode network with ``restrict=on`` (the guest reaches nothing outside)
and one port forward bound to 127.0.0.1 for the guest agent; libvirt 9's
``<interface type='user'>`` port forwards need passt, so the network and the
fw_cfg items go through ``<qemu:commandline>``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from vm_images import guest_config


@dataclass(frozen=True)
class DomainSpec:
    """Everything that varies between VMs."""

    name: str
    kvm: bool
    memory_mib: int
    vcpus: int
    kernel: Path
    initrd: Path
    cmdline: str
    overlay: Path
    console_log: Path
    host_port: int
    token_file: Path
    env_file: Path
    code_file: Path


#: CPU features hidden from a TCG guest. With them (``-cpu max`` of QEMU 7.2, whose TCG emulates AVX and
#: AVX2 since that release) Stellarium died with SIGSEGV in the VM while loading its first landscape,
#: which it draws through software OpenGL (llvmpipe JIT-compiles for the widest vectors the CPU reports);
#: without them it runs (the other apps ran with them as well).
TCG_DISABLED_FEATURES = ("avx", "avx2", "fma", "f16c")


def domain_xml(spec: DomainSpec) -> str:
    """The domain XML for ``spec``."""
    netdev = (f"user,id=sbnet,restrict=on,"
              f"hostfwd=tcp:127.0.0.1:{spec.host_port}-{guest_config.GUEST_ADDRESS}:{guest_config.GUEST_PORT}")
    qemu_args = [
        "-netdev", netdev, "-device", "virtio-net-pci,netdev=sbnet,addr=0x10",
        "-fw_cfg", f"name={guest_config.FW_CFG_TOKEN},file={spec.token_file}",
        "-fw_cfg", f"name={guest_config.FW_CFG_ENV},file={spec.env_file}",
        "-fw_cfg", f"name={guest_config.FW_CFG_CODE},file={spec.code_file}",
    ]
    args = "\n".join(f"    <qemu:arg value={quoteattr(a)}/>" for a in qemu_args)
    if spec.kvm:
        cpu = "<cpu mode='host-passthrough'/>"
    else:
        disabled = "".join(f"<feature policy='disable' name='{name}'/>" for name in TCG_DISABLED_FEATURES)
        cpu = f"<cpu mode='maximum'>{disabled}</cpu>"
    # QEMU runs as the calling user (like qemu:///session): it reads this user's cache, nothing else.
    label = f"+{os.getuid()}:+{os.getgid()}"
    return f"""<domain type='{"kvm" if spec.kvm else "qemu"}' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{spec.name}</name>
  <memory unit='MiB'>{spec.memory_mib}</memory>
  <vcpu>{spec.vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{_text(spec.kernel)}</kernel>
    <initrd>{_text(spec.initrd)}</initrd>
    <cmdline>{_text(spec.cmdline)}</cmdline>
  </os>
  <features><acpi/></features>
  {cpu}
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='unsafe'/>
      <source file={quoteattr(str(spec.overlay))}/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'>
      <source path={quoteattr(str(spec.console_log))} append='on'/>
      <target port='0'/>
    </serial>
    <video><model type='none'/></video>
    <memballoon model='none'/>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
  </devices>
  <seclabel type='static' model='dac' relabel='no'><label>{label}</label></seclabel>
  <qemu:commandline>
{args}
  </qemu:commandline>
</domain>
"""


def _text(value: object) -> str:
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
