"""Where the project keeps things outside the repository, so fresh clones reuse them."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    """The per-user cache: $KFSTACK_CACHE, else $XDG_CACHE_HOME/kubeflow-stacks, else ~/.cache/..."""
    explicit = os.environ.get("KFSTACK_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "kubeflow-stacks"


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
