"""Facts about this host that decide how containers can run: capabilities, cgroups, root, distro.

Read from /proc and /sys rather than assumed: the microVMs the project is built on lack
CAP_SYS_RESOURCE in their bounding set, laptops and hosted CI runners do not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CAP_SYS_RESOURCE = 24
# What dockerd itself needs (mounts, bridges, iptables): an unprivileged container holds neither.
DAEMON_CAPABILITIES = {"CAP_SYS_ADMIN": 21, "CAP_NET_ADMIN": 12}


def capability_mask(field: str = "CapBnd", status: Path = Path("/proc/self/status")) -> int | None:
    """One capability mask of this process (CapBnd, CapEff, ...), or None when unreadable."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split(":", 1)[1].strip(), 16)
    except (OSError, ValueError):
        return None
    return None


def lacks_sys_resource(status: Path = Path("/proc/self/status")) -> bool:
    """True when no process here can hold CAP_SYS_RESOURCE, so privileged containers fail in runc."""
    mask = capability_mask("CapBnd", status)
    return mask is not None and not mask & (1 << CAP_SYS_RESOURCE)


def missing_daemon_capabilities(status: Path = Path("/proc/self/status")) -> list[str]:
    """The capabilities a Docker daemon needs that this process does not hold (empty when unreadable)."""
    mask = capability_mask("CapEff", status)
    if mask is None:
        return []
    return [name for name, bit in DAEMON_CAPABILITIES.items() if not mask & (1 << bit)]


def cgroup_version(root: Path = Path("/sys/fs/cgroup")) -> str:
    """"v2" (unified), "v1" (legacy or hybrid) or "none"."""
    if (root / "cgroup.controllers").exists():
        return "v2"
    if root.is_dir() and any(root.iterdir()):
        return "v1"
    return "none"


def os_release(path: Path = Path("/etc/os-release")) -> dict[str, str]:
    """/etc/os-release as a dict (ID, VERSION_CODENAME, ...); empty when missing."""
    data: dict[str, str] = {}
    try:
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                data[key.strip()] = value.strip().strip('"')
    except OSError:
        pass
    return data


def is_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class HostFacts:
    """What `doctor` and the runtime set-up decide on."""

    root: bool
    distro: str
    codename: str
    cgroup: str
    lacks_sys_resource: bool

    @property
    def debian_like(self) -> bool:
        return self.distro in ("debian", "ubuntu")


def host_facts() -> HostFacts:
    release = os_release()
    return HostFacts(root=is_root(), distro=release.get("ID", ""), codename=release.get("VERSION_CODENAME", ""),
                     cgroup=cgroup_version(), lacks_sys_resource=lacks_sys_resource())
