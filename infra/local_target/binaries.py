"""Finding the binaries the local target runs: the project's toolchain first, then overrides and PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# nginx comes from Debian's packages (scripts/setup installs nginx-light), not from the toolchain.
SYSTEM_FALLBACKS = {"nginx": (Path("/usr/sbin/nginx"),)}


class MissingBinary(RuntimeError):
    pass


def env_override(name: str) -> str:
    """KFSTACK_BIN_OAUTH2_PROXY for oauth2-proxy: the same names the toolchain honours."""
    return "KFSTACK_BIN_" + name.upper().replace("-", "_")


def binary(name: str) -> Path:
    """Path of `name`: `infra.toolchain.tool_path` when installed, else the env override, else PATH."""
    problems: list[str] = []
    from infra.toolchain import tool_path
    from infra.toolchain.model import ToolchainError

    try:
        path = Path(tool_path(name))
        if path.is_file():
            return path
        problems.append(f"toolchain: {path} does not exist")
    except ToolchainError as exc:
        problems.append(f"toolchain: {exc}")
    override = os.environ.get(env_override(name))
    if override:
        if Path(override).is_file():
            return Path(override)
        problems.append(f"{env_override(name)}={override} does not exist")
    found = shutil.which(name)
    if found:
        return Path(found)
    for candidate in SYSTEM_FALLBACKS.get(name, ()):
        if candidate.is_file():
            return candidate
    problems.append("not on PATH")
    raise MissingBinary(f"{name} not found ({'; '.join(problems)}); install it with `kfstack tools "
                        f"install` (or `scripts/setup`), or point {env_override(name)} at a binary")
