"""T3 here: the Docker daemon the project starts and stops for real.

Runs where no daemon answers yet (CI: it starts one, checks it, stops it; the live kind tests start
it again), or, when asked, over a daemon kfstack started that runs no containers. A daemon someone
else runs is never stopped: the test is then NOT RUN, with the reason. (Named to run before the
kind tests, whose session fixture keeps a daemon running.)
"""

from __future__ import annotations

import os

import pytest

from infra.runtime import docker, host, probe, shim

pytestmark = [pytest.mark.live]
RESTART_ENV = "KFSTACK_TEST_RESTART_DOCKER"


def _quiet(_line: str) -> None:
    return None


@pytest.fixture
def free_daemon() -> bool:
    """Whether a daemon kfstack started was running (the test leaves it running again)."""
    if docker.docker_cli() is None or docker.dockerd_binary() is None:
        pytest.skip("NOT RUN: Docker is not installed here (./scripts/setup installs it as root on Debian)")
    if not host.is_root():
        pytest.skip("NOT RUN: starting dockerd needs root")
    if host.missing_daemon_capabilities() and docker.server_info() is None:
        pytest.skip(f"NOT RUN: starting dockerd needs {', '.join(host.missing_daemon_capabilities())}, "
                    "which this process lacks (an unprivileged container)")
    info = docker.server_info()
    if info is not None and docker.owned_pid() is None:
        pytest.skip("NOT RUN: a Docker daemon kfstack did not start is running: tests never stop it")
    if info is not None and docker.running_containers():
        pytest.skip("NOT RUN: the daemon kfstack started runs containers (a cluster?): not stopping it under them")
    if info is not None and os.environ.get(RESTART_ENV) != "1":
        pytest.skip(f"NOT RUN: the daemon kfstack started is running and others may be using it: set "
                    f"{RESTART_ENV}=1 to let this test stop and restart it (in CI no daemon runs yet, and the "
                    "test runs)")
    return info is not None


def test_start_records_the_daemon_and_stop_stops_only_it(free_daemon: bool) -> None:
    if free_daemon:
        assert docker.stop_daemon(_quiet) is True
    assert docker.server_info() is None
    assert docker.read_record() is None

    state = docker.ensure_running(_quiet)
    try:
        assert state.answering and state.started and state.owned
        record = docker.read_record()
        assert record is not None and docker.owned_pid() == record.pid
        if host.lacks_sys_resource():
            assert state.default_runtime == shim.RUNTIME_NAME
        result = probe.privileged_container_starts()
        assert result.ok, result.detail
        again = docker.ensure_running(_quiet)  # a second start finds it and starts nothing
        assert again.answering and not again.started and again.owned
    finally:
        if not free_daemon:
            docker.stop_daemon(_quiet)
    if not free_daemon:
        assert docker.server_info() is None
