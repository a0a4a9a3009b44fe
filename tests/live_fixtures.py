"""Fixtures shared by the live tier's modules (tests/test_live_*.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.runtime import docker


def _quiet(_line: str) -> None:
    return None


@pytest.fixture(scope="session")
def container_runtime() -> Iterator[docker.RuntimeState]:
    """A Docker daemon that answers: the running one, or one started here and stopped afterwards."""
    if docker.server_info() is None and (docker.docker_cli() is None or docker.dockerd_binary() is None):
        pytest.skip("NOT RUN: no container runtime on this machine (install Docker; ./scripts/setup does as root on "
                    "Debian)")
    try:
        state = docker.ensure_running(_quiet)
    except docker.RuntimeSetupError as exc:
        pytest.skip(f"NOT RUN: the container runtime cannot run here: {exc}")
    yield state
    if state.started:
        docker.stop_daemon(_quiet)
