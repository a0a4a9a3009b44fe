"""cgroup v1 controllers the kernel enables but the host never mounted, and mounting them.

kind and minikube nodes run systemd, and kubelet inside them needs a `kubelet.slice` in every v1
hierarchy the node's systemd mounts. The node's entrypoint prepares those slices only in the
hierarchies it finds mounted on the host; systemd then mounts every other controller that
/proc/cgroups enables, and kubelet exits at once ("cgroup ["kubelet"] has some missing paths:
/sys/fs/cgroup/hugetlb/kubelet.slice"). Hosts whose init is systemd mount every enabled
controller; hosts without it rely on Debian's `cgroupfs-mount` before the Docker daemon starts,
which a daemon started directly skips. So the host's mounts are read, never assumed, and where
the project manages the daemon as root it completes them the way systemd lays them out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra.errors import UserError
from smoke_tests.run import run

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUPS = Path("/proc/cgroups")
PROC_MOUNTS = Path("/proc/self/mounts")
# Controllers systemd mounts together in one hierarchy, linking each name to it.
JOINED = (("cpu", "cpuacct"), ("net_cls", "net_prio"))

Say = Callable[[str], None]


class CgroupMountError(UserError):
    """Enabled v1 controllers are not mounted and the project may not (or could not) mount them."""


def enabled_controllers(proc_cgroups: str) -> list[str]:
    """The controllers /proc/cgroups lists as enabled, in its order."""
    names = []
    for line in proc_cgroups.splitlines():
        fields = line.split()
        if len(fields) == 4 and not line.startswith("#") and fields[3] == "1":
            names.append(fields[0])
    return names


def mounted_controllers(mounts: str, root: Path = CGROUP_ROOT) -> set[str]:
    """The controllers of every v1 cgroup hierarchy mounted at a directory directly under `root`."""
    found: set[str] = set()
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] != "cgroup" or Path(fields[1]).parent != root:
            continue
        found.update(opt for opt in fields[3].split(",") if not opt.startswith("name=") and "=" not in opt)
    return found


def is_v2(root: Path = CGROUP_ROOT) -> bool:
    """A unified-only host: its controllers live in one hierarchy and none can be left unmounted."""
    return (root / "cgroup.controllers").exists()


def unmounted_controllers(proc_cgroups: str, mounts: str, root: Path = CGROUP_ROOT) -> list[str]:
    """Enabled v1 controllers with no hierarchy mounted under `root`, or no path of their name there."""
    if is_v2(root) or not root.is_dir():
        return []
    mounted = mounted_controllers(mounts, root)
    return [name for name in enabled_controllers(proc_cgroups)
            if name not in mounted or not (root / name).exists()]


@dataclass(frozen=True)
class MountStep:
    """One hierarchy to mount at `root/<directory>` with `controllers`, and the names linked to it."""

    controllers: tuple[str, ...]

    @property
    def directory(self) -> str:
        return ",".join(self.controllers)

    @property
    def links(self) -> tuple[str, ...]:
        return self.controllers if len(self.controllers) > 1 else ()


def mount_plan(missing: list[str], mounted: set[str] | None = None) -> list[MountStep]:
    """The hierarchies to mount for `missing`: joined pairs together (as systemd mounts them) when
    neither half is mounted already, every other controller on its own."""
    mounted = mounted or set()
    steps: list[MountStep] = []
    left = list(missing)
    for pair in JOINED:
        if all(name in left for name in pair) and not any(name in mounted for name in pair):
            steps.append(MountStep(pair))
            left = [name for name in left if name not in pair]
    steps.extend(MountStep((name,)) for name in left if name not in mounted)
    return sorted(steps, key=lambda s: s.directory)


def fix_commands(steps: list[MountStep], root: Path = CGROUP_ROOT) -> list[str]:
    """Shell commands a root user runs to complete the mounts (what `apply_plan` does)."""
    commands = []
    for step in steps:
        target = root / step.directory
        commands.append(f"mkdir -p {target} && mount -t cgroup -o {step.directory} cgroup {target}")
        commands.extend(f"ln -s {step.directory} {root / name}" for name in step.links)
    return commands


def _mount(options: str, target: Path) -> None:
    run(["mount", "-t", "cgroup", "-o", options, "cgroup", str(target)], timeout=30)


def apply_plan(steps: list[MountStep], root: Path = CGROUP_ROOT, *,
               mount: Callable[[str, Path], None] = _mount) -> list[str]:
    """Mount each step's hierarchy and link its names; returns what was done, one line each."""
    done = []
    for step in steps:
        target = root / step.directory
        if not target.exists():
            target.mkdir(parents=True)
        if not target.is_mount():
            mount(step.directory, target)
            done.append(f"mounted {step.directory} at {target}")
        for name in step.links:
            link = root / name
            if not link.exists() and not link.is_symlink():
                link.symlink_to(step.directory)
                done.append(f"linked {link} -> {step.directory}")
    return done


@dataclass(frozen=True)
class CgroupGaps:
    """What this host lacks: the unmounted controllers and the steps that would complete them."""

    missing: list[str]
    steps: list[MountStep]
    root: Path = CGROUP_ROOT

    def describe(self) -> str:
        return (f"cgroup v1 controllers enabled in /proc/cgroups but not mounted under {self.root}: "
                f"{', '.join(self.missing)}; kubelet in a kind or minikube node exits at once without them")

    def commands(self) -> list[str]:
        return fix_commands(self.steps, self.root)


def host_gaps(root: Path = CGROUP_ROOT, proc_cgroups: Path = PROC_CGROUPS,
              mounts: Path = PROC_MOUNTS) -> CgroupGaps:
    """This host's unmounted v1 controllers (none on v2 hosts or where the files cannot be read)."""
    try:
        cgroups_text, mounts_text = proc_cgroups.read_text(), mounts.read_text()
    except OSError:
        return CgroupGaps([], [], root)
    missing = unmounted_controllers(cgroups_text, mounts_text, root)
    return CgroupGaps(missing, mount_plan(missing, mounted_controllers(mounts_text, root)), root)


def complete_mounts(gaps: CgroupGaps, say: Say, *,
                    mount: Callable[[str, Path], None] = _mount) -> list[str]:
    """Mount what `gaps` lacks and say each step; a failure names the commands to run instead."""
    if not gaps.missing:
        return []
    try:
        done = apply_plan(gaps.steps, gaps.root, mount=mount)
    except (OSError, RuntimeError) as exc:
        raise CgroupMountError(f"{gaps.describe()}. Mounting them failed ({str(exc).splitlines()[0]}); "
                               f"run as root: {'; '.join(gaps.commands())}") from None
    for line in done:
        say(f"cgroups: {line} (enabled by the kernel, not mounted by this host's init)")
    return done


def ensure_node_cgroups(say: Say, *, may_mount: bool, gaps: CgroupGaps | None = None,
                        mount: Callable[[str, Path], None] = _mount) -> list[str]:
    """Before a kind or minikube node starts: complete the mounts when `may_mount` (root, and the
    project manages the daemon), otherwise refuse with the commands, before any node exists."""
    gaps = gaps if gaps is not None else host_gaps()
    if not gaps.missing:
        return []
    if not may_mount:
        raise CgroupMountError(f"{gaps.describe()}. kfstack mounts them only as root for a Docker daemon it "
                               f"started (`kfstack runtime start`); otherwise run as root: "
                               f"{'; '.join(gaps.commands())} (Debian's cgroupfs-mount package does the same)")
    return complete_mounts(gaps, say, mount=mount)
