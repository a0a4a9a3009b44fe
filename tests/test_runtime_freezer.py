"""Thawing cgroups a container left frozen inside itself (infra/runtime/freezer.py).

The defect a real kind cluster showed: a node deleted while its own runc had a pod's cgroup frozen
could not be killed, so `kind delete cluster` failed and the node stayed. Unit tests read a cgroup
tree laid out in a temporary folder; the live test makes the same state in a real container (its
init moved into a frozen child cgroup), sees Docker fail to remove it, thaws, and removes it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from infra.runtime import freezer
from smoke_tests.run import run
from tests.live_fixtures import container_runtime  # noqa: F401 - a fixture

V1_PROC = """12:pids:/docker/abc
6:freezer:/docker/abc
1:name=systemd:/docker/abc
0::/docker/abc
"""


def _v1_tree(root: Path) -> Path:
    top = root / "freezer" / "docker" / "abc"
    for cgroup, state in [(top, "THAWED"), (top / "kubepods" / "pod1" / "c1", "FROZEN"),
                          (top / "kubepods" / "pod1", "THAWED"), (top / "kubepods" / "pod2", "FREEZING")]:
        cgroup.mkdir(parents=True, exist_ok=True)
        (cgroup / "freezer.state").write_text(state + "\n")
    return top


def test_v1_finds_the_container_freezer_cgroup_and_every_frozen_one_under_it(tmp_path: Path) -> None:
    top = _v1_tree(tmp_path)
    assert freezer.freezer_dirs(V1_PROC, tmp_path) == [top]  # 0:: is no unified hierarchy on a v1 host
    assert freezer.frozen_below(top) == [top / "kubepods" / "pod1" / "c1", top / "kubepods" / "pod2"]


def test_v1_thaw_writes_thawed_deepest_first_and_leaves_the_rest(tmp_path: Path) -> None:
    top = _v1_tree(tmp_path)
    thawed = freezer.thaw_below(top)
    assert thawed == [top / "kubepods" / "pod1" / "c1", top / "kubepods" / "pod2"]
    assert {p.parent.relative_to(top).as_posix(): p.read_text().strip() for p in top.rglob("freezer.state")} == {
        ".": "THAWED", "kubepods/pod1": "THAWED", "kubepods/pod1/c1": "THAWED", "kubepods/pod2": "THAWED"}
    assert freezer.thaw_below(top) == []


def test_v2_reads_the_unified_hierarchy_and_clears_cgroup_freeze(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    top = tmp_path / "system.slice" / "docker-abc.scope"
    inner = top / "kubelet.slice" / "pod"
    inner.mkdir(parents=True)
    (top / "cgroup.freeze").write_text("0\n")
    (inner / "cgroup.freeze").write_text("1\n")
    assert freezer.freezer_dirs("0::/system.slice/docker-abc.scope\n", tmp_path) == [top]
    assert freezer.thaw_below(top) == [inner]
    assert (inner / "cgroup.freeze").read_text() == "0"


def test_a_missing_cgroup_or_process_is_nothing_to_thaw(tmp_path: Path) -> None:
    assert freezer.freezer_dirs(V1_PROC, tmp_path) == []
    assert freezer.container_cgroups(2**22 + 12345) == []


@pytest.mark.live
def test_a_container_with_a_frozen_cgroup_inside_is_removed_once_thawed(
        container_runtime: object) -> None:  # noqa: F811 - the shared fixture
    from infra.nodeimage.build import Build
    from infra.nodeimage.pins import load_pins
    from infra.nodeimage.recipes import RecipeError, debian_base
    from infra.nodeimage.steps import StepLog

    if os.geteuid() != 0:
        pytest.skip("NOT RUN: freezing a cgroup needs root")
    try:
        image, _ = debian_base(Build(pins=load_pins(), log=StepLog(lambda _line: None)))
    except RecipeError as exc:
        pytest.skip(f"NOT RUN: {exc}")
    name = f"kfstack-frozen-{os.getpid()}"
    cid = run(["docker", "run", "-d", "--name", name, image, "sleep", "infinity"], timeout=120).stdout.strip()
    try:
        pid = int(run(["docker", "inspect", "--format", "{{.State.Pid}}", cid], timeout=30).stdout)
        (top,) = freezer.container_cgroups(pid)
        child = top / "kfstack-frozen"
        child.mkdir()
        if (child / "freezer.state").exists():  # v1: what the nested runc does to a pod's cgroup
            (child / "tasks").write_text(str(pid))
            (child / "freezer.state").write_text("FROZEN")
        else:
            try:
                (child / "cgroup.procs").write_text(str(pid))
            except OSError as exc:
                pytest.skip(f"NOT RUN: cannot move the container's init into a child cgroup here: {exc}")
            (child / "cgroup.freeze").write_text("1")
        refused = run(["docker", "rm", "-f", cid], timeout=120, check=False)
        assert refused.returncode != 0, "Docker removed a container whose init was frozen"
        assert "kill" in (refused.stderr + refused.stdout).lower(), refused.stderr

        assert freezer.thaw_container(cid, say=lambda _line: None) == [child]
        run(["docker", "rm", "-f", cid], timeout=120)
        assert run(["docker", "ps", "-aq", "--filter", f"name=^{name}$"], timeout=30).stdout.split() == []
    finally:
        freezer.thaw_container(cid, say=lambda _line: None)
        run(["docker", "rm", "-f", cid], timeout=120, check=False)
        with contextlib.suppress(NameError, OSError):
            child.rmdir()  # runc removes the container's cgroup with what is under it; if not, this does
