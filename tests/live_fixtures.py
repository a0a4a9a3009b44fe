"""Fixtures shared by the live tier's modules (tests/test_live_*.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

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


def source_or_release(build: Callable[[], str], release: str, what: str) -> str:
    """The image the source route builds here (every step cached, so quick when warm); where it
    cannot be built (no debootstrap, not root), the pinned `release` image, if it can be pulled."""
    import os
    import shutil

    if os.geteuid() == 0 and shutil.which("debootstrap"):
        return build()
    if run(["docker", "image", "inspect", release], timeout=60, check=False).returncode != 0 and \
            run(["docker", "pull", release], timeout=900, check=False).returncode != 0:
        pytest.skip(f"NOT RUN: no {what}: the source route needs root and debootstrap, and {release} "
                    "cannot be pulled")
    return release


@pytest.fixture(scope="session")
def node_image(container_runtime: docker.RuntimeState) -> str:
    """The kind node image: built here, else the pinned release image."""
    require_toolchain("kind", "pulumi", "kubectl")
    from infra.nodeimage.build import build_node_image
    from infra.versions import load_versions

    return source_or_release(lambda: build_node_image(say=_quiet).tag, load_versions().kind_node_image,
                             "node image")


@pytest.fixture(scope="session")
def kicbase(container_runtime: docker.RuntimeState) -> str:
    """minikube's kicbase image with its preload: built here, else upstream's pinned kicbase."""
    require_toolchain("minikube", "pulumi", "kubectl")
    from infra.nodeimage.kicbase import build_kicbase
    from infra.versions import load_versions

    return source_or_release(lambda: build_kicbase(say=_quiet).tag, load_versions().minikube_base_image,
                             "kicbase image")


def minikube_leftovers(name: str) -> dict[str, list[str]]:
    """What a deleted minikube profile must not leave: node containers, its network and volume, its routes."""
    from infra.clusters.minikube import profile_containers
    from infra.runtime import routes

    def names(kind: str) -> list[str]:
        out = run(["docker", kind, "ls", "--format", "{{.Name}}"], timeout=60).stdout.split()
        return [n for n in out if n == name]

    return {"containers": profile_containers(name), "networks": names("network"), "volumes": names("volume"),
            "routes": routes.held_by(f"minikube:{name}")}
