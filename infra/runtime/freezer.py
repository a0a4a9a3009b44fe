"""Thawing what a killed container left frozen inside itself, so Docker can remove it.

On a cgroup v1 host, runc freezes a container's cgroup while it rewrites the device rules and thaws
it afterwards. A kind node runs its own containerd and runc: when the node is deleted while its
runc is starting a pod's container, that runc can die between the two steps. The pod's cgroup then
stays FROZEN, the frozen `runc init` never runs to take its SIGKILL, the node's init waits for it
forever, and Docker gives up ("Could not kill running container"), so `kind delete cluster` fails
and the node stays. Docker does not know about cgroups a container made for itself, so nothing
thaws them; `thaw` does, and the kill then lands.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from smoke_tests.run import run

CGROUP_ROOT = Path("/sys/fs/cgroup")


def container_cgroups(pid: int, root: Path = CGROUP_ROOT) -> list[Path]:
    """The freezer cgroup directories of process `pid`: the v1 freezer hierarchy's, or the unified one's."""
    try:
        return freezer_dirs(Path(f"/proc/{pid}/cgroup").read_text(), root)
    except OSError:
        return []


def freezer_dirs(proc_cgroup: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """The existing freezer cgroup directories a /proc/<pid>/cgroup text names under `root`."""
    found = []
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        if "freezer" in controllers.split(","):
            found.append(root / "freezer" / path.lstrip("/"))
        elif controllers == "" and (root / "cgroup.controllers").exists():  # v2: the unified hierarchy
            found.append(root / path.lstrip("/"))
    return [p for p in found if p.is_dir()]


def frozen_below(top: Path) -> list[Path]:
    """Every cgroup at or under `top` that is frozen (v1 freezer.state FROZEN/FREEZING, v2 cgroup.freeze 1)."""
    frozen = []
    for state in sorted(top.rglob("freezer.state")):
        if _read(state) in ("FROZEN", "FREEZING"):
            frozen.append(state.parent)
    for freeze in sorted(top.rglob("cgroup.freeze")):
        if _read(freeze) == "1":
            frozen.append(freeze.parent)
    return frozen


def thaw_below(top: Path) -> list[Path]:
    """Thaw every frozen cgroup at or under `top`, the deepest first; the cgroups thawed."""
    thawed = []
    for cgroup in sorted(frozen_below(top), key=lambda p: len(p.parts), reverse=True):
        if (cgroup / "freezer.state").exists():
            (cgroup / "freezer.state").write_text("THAWED")
        else:
            (cgroup / "cgroup.freeze").write_text("0")
        thawed.append(cgroup)
    return thawed


def thaw_container(container: str, docker: str = "docker", say: Callable[[str], None] = print) -> list[Path]:
    """Thaw the frozen cgroups inside one container (by name or id); the cgroups thawed.

    Only cgroups under the container's own cgroup are touched, so nothing outside what the
    container made for itself changes. A container that is not running has none.
    """
    out = run([docker, "inspect", "--format", "{{.State.Pid}}", container], timeout=30, check=False)
    pid = int(out.stdout.strip() or 0) if out.returncode == 0 else 0
    if pid <= 0:
        return []
    thawed = [c for top in container_cgroups(pid) for c in thaw_below(top)]
    for cgroup in thawed:
        say(f"  thawed {cgroup} (left frozen inside {container})")
    return thawed


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
