"""Shared fixtures for the project's own tests (not the smoke suite)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.config import StackConfig, parse_stack_config
from infra.names import unique_name
from tests.helpers import SHARED_MANIFESTS, base_raw, require_toolchain

# pytester runs the smoke suite's plugin in-process (tests/test_smoke_plugin.py).
pytest_plugins = ("pytester",)


@pytest.fixture(scope="session")
def manifests_tree() -> Path:
    """The upstream Kubeflow v1.11.0 tree, rendered offline (CI points at shared/)."""
    path = Path(os.environ.get("KFSTACK_MANIFESTS", SHARED_MANIFESTS))
    if not (path / "common").is_dir():
        pytest.skip(f"NOT RUN: the render tier needs the upstream manifests tree: ./scripts/setup fetches it "
                    f"with network (kfstack manifests fetch), or set KFSTACK_MANIFESTS (tried {path})")
    return path


@pytest.fixture(autouse=True)
def _no_release_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's KFSTACK_RELEASE_MIRROR (a company mirror; the fresh container's stand-ins) must not
    send the tests' own downloads elsewhere: the tests that use a mirror set their own."""
    monkeypatch.delenv("KFSTACK_RELEASE_MIRROR", raising=False)


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache and Pulumi home of the test's own; no KFSTACK_BIN_* leaks in from the caller."""
    monkeypatch.setenv("KFSTACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "pulumi-home"))
    for key in [k for k in os.environ if k.startswith("KFSTACK_BIN_")]:
        monkeypatch.delenv(key)
    return tmp_path / "cache"


@pytest.fixture
def stack_config_factory() -> Callable[..., StackConfig]:
    def make(stack: str = "test", secret_keys: tuple[str, ...] = ("auth",), **overrides: Any) -> StackConfig:
        return parse_stack_config(stack, base_raw(**overrides), set(secret_keys))

    return make


@pytest.fixture(scope="session")
def sim_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A small KWOK cluster (real kube-apiserver, etcd and controllers) shared by the session's
    modules that need only an API server (one create instead of one per module); its kubeconfig
    file. Each module works in names of its own (its own API group, namespace or webhook) and
    removes what it made. Skips when the pinned toolchain is not installed."""
    from infra.clusters.sim import SimClusterProvider

    require_toolchain("kwokctl", "kwok", "kube-apiserver", "etcd")
    provider = SimClusterProvider()
    props = {"name": unique_name("kftest"), "nodes": 1, "nodeCpu": "16", "nodeMemory": "64Gi",
             "nodePods": 110}
    path = tmp_path_factory.mktemp("kwok") / "kubeconfig"
    path.write_text(provider.create_cluster(props), encoding="utf-8")
    try:
        yield path
    finally:
        provider.delete_cluster(props)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Inside the fresh container, only the simulated-cluster modules the set-up's proof needs."""
    from tests.fresh_container import inside_selection

    inside_selection(config, items)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The fresh-machine test's container starts now, beside the other tests (tests/fresh_container.py)."""
    from tests.fresh_container import start_beside

    start_beside(session.config, session.items)


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests.fresh_container import close_beside

    close_beside(session.config)
