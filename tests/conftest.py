"""Shared fixtures for the project's own tests (not the smoke suite)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.config import StackConfig, parse_stack_config
from tests.helpers import SHARED_MANIFESTS, base_raw

# pytester runs the smoke suite's plugin in-process (tests/test_smoke_plugin.py).
pytest_plugins = ("pytester",)


@pytest.fixture(scope="session")
def manifests_tree() -> Path:
    """The upstream Kubeflow v1.11.0 tree, rendered offline (CI points at shared/)."""
    path = Path(os.environ.get("KFSTACK_MANIFESTS", SHARED_MANIFESTS))
    if not (path / "common").is_dir():
        pytest.skip(f"render tier needs the upstream manifests tree: set KFSTACK_MANIFESTS (tried {path})")
    return path


@pytest.fixture
def stack_config_factory() -> Callable[..., StackConfig]:
    def make(stack: str = "test", secret_keys: tuple[str, ...] = ("auth",), **overrides: Any) -> StackConfig:
        return parse_stack_config(stack, base_raw(**overrides), set(secret_keys))

    return make
