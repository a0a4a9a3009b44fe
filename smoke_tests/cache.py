"""The per-user cache directory that the suite (the local target's default directory) and the
kubeflow-stacks project (tools, state, clusters) share."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$KFSTACK_CACHE, else $XDG_CACHE_HOME/kubeflow-stacks, else ~/.cache/kubeflow-stacks."""
    explicit = os.environ.get("KFSTACK_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "kubeflow-stacks"
