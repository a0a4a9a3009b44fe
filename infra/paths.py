"""Where the project keeps things outside the repository, so fresh clones reuse them."""

from __future__ import annotations

from pathlib import Path

from smoke_tests.cache import cache_root

__all__ = ["REPO_ROOT", "cache_root", "clusters_dir", "manifests_cache", "state_dir", "tool_home", "tools_dir"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def tools_dir() -> Path:
    return cache_root() / "tools"


def tool_home(name: str, version: str) -> Path:
    """One directory per tool and version: <cache>/tools/<name>/<version>/bin holds its binaries."""
    return tools_dir() / name / version


def manifests_cache() -> Path:
    return cache_root() / "manifests"


def state_dir() -> Path:
    """The default local Pulumi backend (see Pulumi.yaml), so `pulumi up` needs no account."""
    return cache_root() / "state"


def clusters_dir() -> Path:
    """Working directories of clusters the project creates (kubeconfigs, kwokctl homes)."""
    return cache_root() / "clusters"
