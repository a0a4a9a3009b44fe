"""The installed-tools cache: one directory per tool and version, each with a marker file.

A tool counts as installed only when its marker names the wanted version and every binary is
there, so an interrupted install (no marker) is never mistaken for a finished one. Installs are
built in a staging directory beside the final one and renamed into place, which is atomic.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from infra import paths
from infra.toolchain.model import Tool

MARKER_NAME = "kfstack-tool.json"


@dataclass(frozen=True)
class Marker:
    """What an install recorded: enough for `tools list`, `doctor` and skipping a second install."""

    name: str
    version: str
    route: str
    seconds: float
    installed_at: str
    binaries: tuple[str, ...]
    go_toolchain: str = ""  # the Go release it was built with, when the tool pins one
    patches: str = ""  # the digest of the patches a module build applied (module.patches)


def patches_digest(tool: Tool) -> str:
    """A digest of the patches the tool's module route applies ("" when it applies none)."""
    patches = tool.module.patches if tool.module else ()
    if not patches:
        return ""
    sha = hashlib.sha256()
    for patch in patches:
        sha.update(patch.encode() + b"\0" + (paths.REPO_ROOT / patch).read_bytes() + b"\0")
    return sha.hexdigest()[:16]


def home(tool: Tool) -> Path:
    return paths.tool_home(tool.name, tool.version)


def bin_dir(tool: Tool) -> Path:
    return home(tool) / "bin"


def write_marker(directory: Path, marker: Marker) -> None:
    data = asdict(marker)
    data["binaries"] = list(marker.binaries)
    (directory / MARKER_NAME).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_marker(directory: Path) -> Marker | None:
    """The marker in `directory`, or None when it is missing or unreadable."""
    try:
        data = json.loads((directory / MARKER_NAME).read_text())
        return Marker(name=str(data["name"]), version=str(data["version"]), route=str(data["route"]),
                      seconds=float(data["seconds"]), installed_at=str(data["installed_at"]),
                      binaries=tuple(data["binaries"]), go_toolchain=str(data.get("go_toolchain", "")),
                      patches=str(data.get("patches", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def installed_marker(tool: Tool) -> Marker | None:
    """The marker of the wanted version when that install is complete, else None."""
    marker = read_marker(home(tool))
    if marker is None or marker.version != tool.version:
        return None
    if tool.go_toolchain and marker.route != "release" and marker.go_toolchain != tool.go_toolchain:
        return None  # built before the pin, or with another Go: rebuilt with the pinned one
    if marker.route == "module" and marker.patches != patches_digest(tool):
        return None  # built with other patches (or none): rebuilt with the pinned ones
    bins = bin_dir(tool)
    if not all(os.access(bins / b, os.X_OK) for b in tool.binaries):
        return None
    return marker


def installed_versions(tool: Tool) -> list[str]:
    """Every version of `tool` with a marker in the cache (the wanted one may be among them)."""
    root = paths.tools_dir() / tool.name
    if not root.is_dir():
        return []
    return [m.version for d in sorted(root.iterdir())
            if not d.name.startswith(".") and (m := read_marker(d)) is not None]


@contextmanager
def install_lock(tool: Tool) -> Iterator[None]:
    """Serialise installs of one tool across processes (two CI jobs sharing a cache)."""
    root = paths.tools_dir() / tool.name
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def recover(tool: Tool) -> None:
    """Undo an install killed between `publish`'s two renames: put the previous version back.

    Called under the tool's install lock, before anything looks at what is installed.
    """
    final = home(tool)
    for old in sorted(final.parent.glob(f".old-{tool.version}-*")):
        if not final.exists() and read_marker(old) is not None:
            old.rename(final)
        else:
            shutil.rmtree(old, ignore_errors=True)


def staging_dir(tool: Tool) -> Path:
    """A fresh directory beside the final one (same file system, so the rename is atomic).

    Called under the tool's install lock, so a leftover staging directory belongs to an install that
    was killed (no other process can be filling it): it is removed here.
    """
    root = paths.tools_dir() / tool.name
    for leftover in root.glob(".staging-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    path = root / f".staging-{tool.version}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    (path / "bin").mkdir(parents=True)
    return path


def publish(staging: Path, final: Path) -> None:
    """Move a finished staging directory into place, replacing an older or broken install."""
    if final.exists():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(final)
