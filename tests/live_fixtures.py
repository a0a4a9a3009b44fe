"""Fixtures shared by the live tier's modules (tests/test_live_*.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.runtime import docker
from smoke_tests.run import run
from tests.helpers import require_toolchain


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


@pytest.fixture(scope="session")
def node_image(container_runtime: docker.RuntimeState) -> str:
    """The node image built here (source route; every step cached, so quick when warm). Where it
    cannot be built (no debootstrap, not root), the pinned release image, if it can be pulled."""
    require_toolchain("kind", "pulumi", "kubectl")
    import os
    import shutil

    if os.geteuid() == 0 and shutil.which("debootstrap"):
        from infra.nodeimage.build import build_node_image

        return build_node_image(say=_quiet).tag
    from infra.versions import load_versions

    release = load_versions().kind_node_image
    if run(["docker", "image", "inspect", release], timeout=60, check=False).returncode != 0 and \
            run(["docker", "pull", release], timeout=900, check=False).returncode != 0:
        pytest.skip(f"NOT RUN: no node image: the source route needs root and debootstrap, and {release} "
                    "cannot be pulled")
    return release
