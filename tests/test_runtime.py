"""The container runtime layer (infra/runtime): host facts, the runc shim run for real, the daemon
record that decides what the project may stop, and the config it gives a daemon it starts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.runtime import docker, host, shim


def _status(tmp_path: Path, bnd: str, eff: str = "000001ffffffffff") -> Path:
    path = tmp_path / "status"
    path.write_text(f"Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t{eff}\nCapBnd:\t{bnd}\n")
    return path


def test_missing_sys_resource_is_read_from_the_bounding_set(tmp_path: Path) -> None:
    assert host.lacks_sys_resource(_status(tmp_path, "000001fffeffffff"))  # bit 24 clear: these microVMs
    assert not host.lacks_sys_resource(_status(tmp_path, "000001ffffffffff"))
    assert not host.lacks_sys_resource(tmp_path / "absent")  # unreadable: assume a normal host


def test_capabilities_dockerd_needs_are_read_from_the_effective_set(tmp_path: Path) -> None:
    # Docker's default set for a container (what the fresh-container test runs in): no SYS_ADMIN, NET_ADMIN.
    assert host.missing_daemon_capabilities(_status(tmp_path, "00000000a80425fb", eff="00000000a80425fb")) == [
        "CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
    assert host.missing_daemon_capabilities(_status(tmp_path, "000001fffeffffff")) == []  # root on these microVMs
    assert host.missing_daemon_capabilities(tmp_path / "absent") == []


def test_cgroup_version(tmp_path: Path) -> None:
    assert host.cgroup_version(tmp_path / "none") == "none"
    (tmp_path / "v1" / "memory").mkdir(parents=True)
    assert host.cgroup_version(tmp_path / "v1") == "v1"
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "cgroup.controllers").write_text("cpu memory\n")
    assert host.cgroup_version(tmp_path / "v2") == "v2"


def _own_mask(field: str) -> int:
    mask = host.capability_mask(field)
    assert mask is not None
    return mask


@pytest.fixture(scope="module")
def shim_binary() -> Path:
    if shutil.which("go") is None:
        pytest.skip("NOT RUN: building the runc shim needs Go on PATH")
    return shim.build_shim(lambda _line: None)


def _spec(caps: list[str]) -> dict[str, object]:
    sets = {s: list(caps) for s in ("bounding", "effective", "inheritable", "permitted", "ambient")}
    return {"ociVersion": "1.0.2", "process": {"user": {"uid": 4294967294, "gid": 0}, "args": ["/pause"],
                                               "oomScoreAdj": -998, "capabilities": sets}}


def test_shim_removes_what_this_host_cannot_grant_and_passes_everything_on(tmp_path: Path,
                                                                           shim_binary: Path) -> None:
    """The real shim against a stand-in runc that records its arguments and the spec it was given."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    wanted = ["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE", "CAP_NET_ADMIN"]
    (bundle / "config.json").write_text(json.dumps(_spec(wanted)))
    seen = tmp_path / "seen"
    fake_runc = tmp_path / "runc"
    fake_runc.write_text(f'#!/bin/sh\necho "$@" > {seen}.args\ncp "{bundle}/config.json" {seen}.json\n')
    fake_runc.chmod(0o755)
    argv = [str(shim_binary), "--root", "/run/x", "--log", "/tmp/l", "create", "--bundle", str(bundle), "c1"]
    subprocess.run(argv, env={**os.environ, "KFSTACK_REAL_RUNC": str(fake_runc)}, check=True, timeout=30)

    assert Path(f"{seen}.args").read_text().split() == argv[1:]
    process = json.loads(Path(f"{seen}.json").read_text())["process"]
    bounding = _own_mask("CapBnd")
    names = {"CAP_CHOWN": 0, "CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21, "CAP_SYS_RESOURCE": 24}
    expected = [c for c in wanted if bounding & (1 << names[c])]
    for capset in process["capabilities"].values():
        assert capset == expected
    own_score = int(Path("/proc/self/oom_score_adj").read_text())
    can_lower = _own_mask("CapEff") & (1 << host.CAP_SYS_RESOURCE)
    assert process["oomScoreAdj"] == (-998 if can_lower or own_score <= -998 else own_score)
    assert process["user"]["uid"] == 4294967294  # numbers survive the rewrite exactly


def test_shim_edits_the_process_file_of_exec(tmp_path: Path, shim_binary: Path) -> None:
    spec = _spec(["CAP_SYS_RESOURCE", "CAP_KILL"])["process"]
    proc_file = tmp_path / "process.json"
    proc_file.write_text(json.dumps(spec))
    fake_runc = tmp_path / "runc"
    fake_runc.write_text(f"#!/bin/sh\ncp {proc_file} {tmp_path}/seen.json\n")
    fake_runc.chmod(0o755)
    subprocess.run([str(shim_binary), "exec", "--process", str(proc_file), "c1"], check=True, timeout=30,
                   env={**os.environ, "KFSTACK_REAL_RUNC": str(fake_runc)})
    caps = json.loads((tmp_path / "seen.json").read_text())["capabilities"]["bounding"]
    assert "CAP_KILL" in caps
    assert ("CAP_SYS_RESOURCE" in caps) == (not host.lacks_sys_resource())


def test_shim_build_is_cached_by_source(tmp_path: Path, shim_binary: Path) -> None:
    assert shim.build_shim(lambda _line: None) == shim_binary
    copy = tmp_path / "src"
    shutil.copytree(shim.SOURCE_DIR, copy)
    (copy / "main.go").write_text((copy / "main.go").read_text() + "\n// changed\n")
    assert shim.shim_path(copy) != shim_binary  # a changed source is a new build, never the old binary


def test_daemon_config_keeps_the_users_settings_and_never_writes_them(tmp_path: Path) -> None:
    user = tmp_path / "daemon.json"
    user.write_text('{"log-level": "warn", "runtimes": {"other": {"path": "/bin/other"}}}')
    before = user.read_text()
    config = docker.daemon_config(Path("/cache/shim"), user)
    assert config["log-level"] == "warn"
    assert config["runtimes"] == {"other": {"path": "/bin/other"}, shim.RUNTIME_NAME: {"path": "/cache/shim"}}
    assert config["default-runtime"] == shim.RUNTIME_NAME
    assert docker.daemon_config(None, user) == json.loads(before)  # no shim needed: the user's config as is
    assert user.read_text() == before
    user.write_text("{not json")
    with pytest.raises(docker.RuntimeSetupError, match=r"daemon\.json is not valid JSON"):
        docker.daemon_config(None, user)


def test_only_a_recorded_live_dockerd_counts_as_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stale record whose pid now belongs to another program must not make `stop` kill it."""
    monkeypatch.setenv("KFSTACK_CACHE", str(tmp_path))
    assert docker.owned_pid() is None
    assert docker.stop_daemon(lambda _line: None) is False  # nothing recorded: nothing stopped
    record = docker.DaemonRecord(pid=os.getpid(), binary="/usr/sbin/dockerd", config_file="", log="",
                                 started_at="", default_runtime="runc")
    docker.state_file().write_text(json.dumps(record.__dict__))
    assert docker.owned_pid() is None  # this pid is pytest's python, not a dockerd
    assert docker.stop_daemon(lambda _line: None) is False
    assert not docker.state_file().exists()  # the stale record is dropped
