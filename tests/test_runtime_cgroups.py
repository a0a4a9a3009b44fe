"""Enabled but unmounted cgroup v1 controllers (infra/runtime/cgroups.py), and what kind does about them.

The defect a fresh host showed: it mounted only some v1 hierarchies while /proc/cgroups enabled
hugetlb, net_cls, net_prio and perf_event too; every kind node's kubelet then exited at start, and
each create waited out its timeout. Unit tests lay the host out in a temporary folder (the
/proc files as text, the hierarchies as directories); the live test reads the real host after
`kfstack runtime` prepared it and creates no cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.clusters import kind
from infra.runtime import cgroups, checks
from tests.live_fixtures import container_runtime  # noqa: F401 - a fixture

PROC_CGROUPS = """#subsys_name\thierarchy\tnum_cgroups\tenabled
cpuset\t3\t1\t1
cpu\t1\t1\t1
cpuacct\t2\t1\t1
blkio\t7\t1\t1
memory\t4\t51\t1
devices\t5\t1\t1
freezer\t6\t1\t1
net_cls\t0\t1\t1
perf_event\t0\t1\t1
net_prio\t0\t1\t1
hugetlb\t0\t1\t1
pids\t8\t1\t1
rdma\t0\t1\t0
"""
PARTIAL = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")


def _host(root: Path, mounted: tuple[str, ...] = PARTIAL) -> str:
    """A v1 host under `root` with `mounted` hierarchies; returns its /proc/self/mounts text."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [f"tmpfs {root} tmpfs rw,relatime,mode=755 0 0"]
    for name in mounted:
        (root / name).mkdir()
        lines.append(f"cgroup {root / name} cgroup rw,relatime,{name} 0 0")
    (root / "systemd").mkdir()
    lines.append(f"cgroup {root / 'systemd'} cgroup rw,relatime,xattr,name=systemd 0 0")
    return "\n".join(lines) + "\n"


def test_the_partial_host_lacks_exactly_the_four_enabled_unmounted_controllers(tmp_path: Path) -> None:
    mounts = _host(tmp_path / "cg")
    assert cgroups.enabled_controllers(PROC_CGROUPS)[-1] == "pids"  # rdma is disabled: not wanted
    assert cgroups.unmounted_controllers(PROC_CGROUPS, mounts, tmp_path / "cg") == [
        "net_cls", "perf_event", "net_prio", "hugetlb"]


def test_a_complete_or_unified_host_lacks_nothing(tmp_path: Path) -> None:
    every = (*PARTIAL, "net_cls", "perf_event", "net_prio", "hugetlb")
    assert cgroups.unmounted_controllers(PROC_CGROUPS, _host(tmp_path / "v1", every), tmp_path / "v1") == []
    unified = tmp_path / "v2"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("cpu memory pids hugetlb\n")
    assert cgroups.unmounted_controllers(PROC_CGROUPS, f"cgroup2 {unified} cgroup2 rw 0 0\n", unified) == []


def test_a_joined_hierarchy_without_its_links_is_still_missing(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    mounts = _host(root, (*PARTIAL, "hugetlb", "perf_event"))
    (root / "net_cls,net_prio").mkdir()
    mounts += f"cgroup {root / 'net_cls,net_prio'} cgroup rw,net_cls,net_prio 0 0\n"
    assert cgroups.unmounted_controllers(PROC_CGROUPS, mounts, root) == ["net_cls", "net_prio"]
    (root / "net_cls").symlink_to("net_cls,net_prio")
    (root / "net_prio").symlink_to("net_cls,net_prio")
    assert cgroups.unmounted_controllers(PROC_CGROUPS, mounts, root) == []


def test_the_plan_joins_what_systemd_joins_and_mounts_the_rest_alone(tmp_path: Path) -> None:
    plan = cgroups.mount_plan(["net_cls", "perf_event", "net_prio", "hugetlb"])
    assert [(s.directory, s.links) for s in plan] == [
        ("hugetlb", ()), ("net_cls,net_prio", ("net_cls", "net_prio")), ("perf_event", ())]
    assert cgroups.fix_commands(plan, Path("/sys/fs/cgroup")) == [
        "mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb",
        "mkdir -p /sys/fs/cgroup/net_cls,net_prio && mount -t cgroup -o net_cls,net_prio cgroup "
        "/sys/fs/cgroup/net_cls,net_prio",
        "ln -s net_cls,net_prio /sys/fs/cgroup/net_cls",
        "ln -s net_cls,net_prio /sys/fs/cgroup/net_prio",
        "mkdir -p /sys/fs/cgroup/perf_event && mount -t cgroup -o perf_event cgroup /sys/fs/cgroup/perf_event"]
    # Half of a pair already in a hierarchy of its own: the other half cannot join it, so it goes alone.
    assert [s.directory for s in cgroups.mount_plan(["net_prio"], {"net_cls"})] == ["net_prio"]


def test_applying_the_plan_completes_the_host(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    mounts = _host(root)
    missing = cgroups.unmounted_controllers(PROC_CGROUPS, mounts, root)
    gaps = cgroups.CgroupGaps(missing, cgroups.mount_plan(missing), root)
    mounted: list[str] = []

    def mount(options: str, target: Path) -> None:  # what mount(8) would add to /proc/self/mounts
        mounted.append(f"cgroup {target} cgroup rw,{options} 0 0")

    said: list[str] = []
    done = cgroups.ensure_node_cgroups(said.append, may_mount=True, gaps=gaps, mount=mount)
    assert len(done) == len(said) == 5 and all(d in s for d, s in zip(done, said, strict=True))  # 3 mounts, 2 links
    assert sorted((root / name).resolve().name for name in ("net_cls", "net_prio")) == ["net_cls,net_prio"] * 2
    assert cgroups.unmounted_controllers(PROC_CGROUPS, mounts + "\n".join(mounted), root) == []


def test_without_leave_to_mount_it_refuses_with_the_commands(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    missing = cgroups.unmounted_controllers(PROC_CGROUPS, _host(root), root)
    gaps = cgroups.CgroupGaps(missing, cgroups.mount_plan(missing), root)
    with pytest.raises(cgroups.CgroupMountError) as err:
        cgroups.ensure_node_cgroups(print, may_mount=False, gaps=gaps, mount=lambda *_: pytest.fail("mounted"))
    message = str(err.value)
    assert "not mounted under " + str(root) + ": net_cls, perf_event, net_prio, hugetlb;" in message
    assert f"mount -t cgroup -o hugetlb cgroup {root / 'hugetlb'}" in message
    assert not (root / "hugetlb").exists()


def test_a_failed_mount_names_the_commands_instead(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    missing = cgroups.unmounted_controllers(PROC_CGROUPS, _host(root), root)

    def refused(options: str, target: Path) -> None:
        raise OSError(f"mount {target}: permission denied")

    with pytest.raises(cgroups.CgroupMountError, match=r"Mounting them failed .*permission denied.*run as root: mkdir"):
        cgroups.complete_mounts(cgroups.CgroupGaps(missing, cgroups.mount_plan(missing), root), print, mount=refused)


def test_the_doctor_line_names_the_controllers_and_the_fix(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    missing = cgroups.unmounted_controllers(PROC_CGROUPS, _host(root), root)
    check = checks.cgroup_check(cgroups.CgroupGaps(missing, cgroups.mount_plan(missing), root), may_mount=False)
    assert not check.ok
    assert check.detail.startswith("v1: cgroup v1 controllers enabled in /proc/cgroups but not mounted")
    assert check.fix.startswith("as root: mkdir -p") and "kfstack runtime start" not in check.fix
    ours = checks.cgroup_check(cgroups.CgroupGaps(missing, cgroups.mount_plan(missing), root), may_mount=True)
    assert ours.fix.startswith("kfstack runtime start (mounts them")
    assert checks.cgroup_check(cgroups.CgroupGaps([], [], root)).ok


def test_a_kind_create_on_such_a_host_stops_before_any_node_or_route(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "cg"
    missing = cgroups.unmounted_controllers(PROC_CGROUPS, _host(root), root)
    monkeypatch.setattr(cgroups, "host_gaps", lambda: cgroups.CgroupGaps(missing, cgroups.mount_plan(missing), root))
    monkeypatch.setattr(kind.docker, "may_prepare_cgroups", lambda: False)
    monkeypatch.setenv("KFSTACK_CACHE", str(tmp_path / "cache"))
    ran: list[Any] = []
    monkeypatch.setattr(kind, "create_watching_kubelet", lambda *a: ran.append(a))
    monkeypatch.setattr(kind.routes, "hold", lambda *a, **k: ran.append(a))
    props = {"name": "kfstack-cg", "nodeImage": "kindest/node:x", "controlPlanes": 1, "workers": 0,
             "serviceAccountIssuer": "https://kubernetes.default.svc",
             "serviceAccountSigningKeyFile": "/etc/kubernetes/pki/sa.key"}
    with pytest.raises(cgroups.CgroupMountError, match="hugetlb"):
        kind.KindClusterProvider().create_cluster(props)
    assert ran == []


@pytest.mark.live
def test_this_host_has_every_enabled_controller_mounted_once_the_runtime_is_prepared(
        container_runtime: Any) -> None:  # noqa: F811 - the shared fixture
    """The real host: after `kfstack runtime start` (the session's fixture), a kind node's kubelet
    finds every hierarchy its systemd mounts. On a host that mounted them itself this holds
    already; on one that did not, the project mounted them (as root, for its own daemon) or the
    check names the commands."""
    gaps = cgroups.host_gaps()
    if gaps.missing and not container_runtime.owned:
        pytest.skip(f"NOT RUN: the Docker daemon here is not kfstack's, so kfstack leaves the host as it is: "
                    f"{gaps.describe()}")
    assert gaps.missing == [], gaps.describe()
    assert checks.cgroup_check().ok
