"""The toolchain lock: every digest and commit an install accepted, so later installs are pinned to it.

A release asset is verified once against the strongest source there is (a SHA-256 recorded in
versions.toml, else the checksums file the same release publishes, else, for the few upstreams
that publish none, the first download itself). Whatever was accepted is written here, keyed by the
upstream URL, and every later install of that asset must match it: a release re-uploaded upstream,
or a mirror serving something else, is refused instead of silently replacing what was verified.

The file lives in the user's cache (`<cache>/toolchain-lock.json`), beside the tools it describes;
deleting it re-verifies everything on the next install.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from infra import paths
from infra.toolchain.model import ToolchainError

LOCK_VERSION = 1


@dataclass(frozen=True)
class Pin:
    """One accepted fact: an asset's SHA-256, or a tag's commit, and what vouched for it."""

    value: str
    verified_by: str  # "versions.toml", "checksums file <url>", "first use", "git ls-remote <repo>"
    tool: str
    recorded_at: str


def lock_path() -> Path:
    return paths.cache_root() / "toolchain-lock.json"


def _read(path: Path) -> dict[str, dict[str, Pin]]:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {"assets": {}, "commits": {}}
    except (OSError, ValueError) as exc:
        raise ToolchainError(f"the toolchain lock {path} is unreadable ({exc}): delete it to re-verify every "
                             "download on the next install") from None
    result: dict[str, dict[str, Pin]] = {"assets": {}, "commits": {}}
    for section in result:
        for key, entry in raw.get(section, {}).items():
            result[section][key] = Pin(**entry)
    return result


@contextmanager
def _locked() -> Iterator[Path]:
    """Serialise writers (two installs of different tools run at once in CI)."""
    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".flock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def get(section: str, key: str) -> Pin | None:
    """The pin recorded for `key` ("assets": an upstream URL; "commits": "<repo> <tag>"), if any."""
    return _read(lock_path()).get(section, {}).get(key)


def record(section: str, key: str, value: str, *, verified_by: str, tool: str) -> None:
    """Write one pin; the file is replaced in one rename, so a reader never sees half of it."""
    with _locked() as path:
        data = _read(path)
        data[section][key] = Pin(value=value, verified_by=verified_by, tool=tool,
                                 recorded_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        out = {"version": LOCK_VERSION,
               **{s: {k: asdict(p) for k, p in sorted(entries.items())} for s, entries in data.items()}}
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(out, indent=2) + "\n")
        tmp.replace(path)
