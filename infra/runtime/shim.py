"""The project's runc shim: built from `runcshim/` with the pinned Go, cached by its source digest.

Only hosts without CAP_SYS_RESOURCE need it (see `host.lacks_sys_resource`). The same binary serves
the Docker daemon the project starts (registered as its default runtime) and kind nodes built by
`infra.nodeimage` (installed as the node's runc, in front of Debian's).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from infra import paths
from infra.toolchain.gobuild import go_binary
from smoke_tests.run import CommandError, run

SOURCE_DIR = Path(__file__).resolve().parent / "runcshim"
BINARY = "kfstack-runc-shim"
RUNTIME_NAME = "kfstack-runc-shim"  # the name the daemon knows it by


def source_digest(source: Path = SOURCE_DIR) -> str:
    """SHA-256 over the shim's files (names and contents): a changed source means a new build."""
    digest = hashlib.sha256()
    for path in sorted(source.iterdir()):
        if path.is_file() and path.suffix in (".go", ".mod"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def shim_path(source: Path = SOURCE_DIR) -> Path:
    """Where the build for this source lives (it may not exist yet)."""
    return paths.tools_dir() / BINARY / source_digest(source)[:16] / "bin" / BINARY


def build_shim(say: Callable[[str], None] = print, source: Path = SOURCE_DIR) -> Path:
    """The shim's path, built first when this source has not been built yet (a static binary)."""
    target = shim_path(source)
    if os.access(target, os.X_OK):
        return target
    start = time.monotonic()
    work = paths.cache_root() / "build" / f"{BINARY}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(source, work)
    staging = target.with_name(f".{BINARY}.{os.getpid()}")
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        run([go_binary(), "build", "-trimpath", "-ldflags", "-s -w", "-o", str(staging), "."], cwd=work,
            timeout=600, env={"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"})
        staging.rename(target)  # atomic: a half-written binary is never found at `target`
    except CommandError as exc:
        raise RuntimeError(f"building the runc shim failed:\n{exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        staging.unlink(missing_ok=True)
    say(f"runc shim: built {target} ({time.monotonic() - start:.1f}s)")
    return target
