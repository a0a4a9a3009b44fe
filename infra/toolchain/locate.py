"""Finding installed tools: the API the rest of the project uses instead of bare PATH lookups.

Everything that runs an external tool asks here, so the pinned version is what runs, a missing
tool fails with the command that installs it, and a user can point at their own binary with
`KFSTACK_BIN_<NAME>` without touching the cache.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from infra.toolchain import store
from infra.toolchain.model import Toolchain, ToolchainError, load_toolchain
from smoke_tests.tools import ToolNotFoundError, override, override_variable

# Every Pulumi command the project runs must use the plugins installed here, never download one,
# and not stop to look for a newer CLI.
PULUMI_ENV = {
    "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
    "PULUMI_SKIP_UPDATE_CHECK": "true",
}


class ToolMissingError(ToolchainError):
    """A pinned tool is not installed; the message names the command that installs it."""


def _override(binary: str) -> Path | None:
    try:
        return override(binary)
    except ToolNotFoundError as exc:
        raise ToolchainError(str(exc)) from None


def tool_path(binary: str, toolchain: Toolchain | None = None) -> Path:
    """The executable to run for `binary`: the KFSTACK_BIN_* override, else the pinned install."""
    override = _override(binary)
    if override is not None:
        return override
    tools = toolchain or load_toolchain()
    tool = tools.tool_for_binary(binary)
    if store.installed_marker(tool) is None:
        others = [v for v in store.installed_versions(tool) if v != tool.version]
        seen = f" (found {', '.join(others)}, which is not the pinned version)" if others else ""
        raise ToolMissingError(
            f"{binary} {tool.version} is not installed{seen}: run `kfstack tools install {tool.name}`, "
            f"or set {override_variable(binary)} to an executable"
        )
    return store.bin_dir(tool) / binary


# Binaries the project runs that no pinned tool provides: Debian's packages, which ./scripts/setup
# installs (nginx-light for the local target's gateway); where Debian puts them when PATH lacks sbin.
SYSTEM_BINARIES: dict[str, tuple[Path, ...]] = {"nginx": (Path("/usr/sbin/nginx"),)}


def find_binary(binary: str, toolchain: Toolchain | None = None) -> Path:
    """An executable for `binary` where any working copy will do (the local target's servers, the
    smoke suite's kubectl): the KFSTACK_BIN_* override, else the pinned install, else PATH, else
    Debian's location. `tool_path` stays strict for what must be the pinned version (Pulumi)."""
    override = _override(binary)
    if override is not None:
        return override
    tools = toolchain or load_toolchain()
    tried: list[str] = []
    try:
        return tool_path(binary, tools)
    except ToolMissingError as exc:
        tried.append(str(exc))
    except ToolchainError:
        tried.append(f"no pinned tool provides {binary}")
    found = shutil.which(binary) or next((str(p) for p in SYSTEM_BINARIES.get(binary, ()) if p.is_file()), None)
    if found:
        return Path(found)
    tried.append("not on PATH")
    raise ToolMissingError(f"{binary} not found: {'; '.join(tried)}. Install it (`./scripts/setup` installs every "
                           f"binary the project runs), or set {override_variable(binary)} to an executable")


def tools_env(toolchain: Toolchain | None = None) -> dict[str, str]:
    """Variables to add to a command's environment: installed bin dirs first on PATH, Pulumi settings.

    Overrides (KFSTACK_BIN_*) come first, so Pulumi, which finds its language host on PATH, uses
    the same binary `tool_path` returns. The result is meant to be merged into os.environ.
    """
    tools = toolchain or load_toolchain()
    dirs: list[str] = []
    for tool in tools.tools.values():
        for binary in tool.binaries:
            override = _override(binary)
            if override is not None:
                dirs.append(str(override.parent))
    dirs += [str(store.bin_dir(t)) for t in tools.tools.values() if store.installed_marker(t) is not None]
    current = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    ordered = list(dict.fromkeys(dirs + current))
    return {"PATH": os.pathsep.join(ordered), **PULUMI_ENV}


@dataclass(frozen=True)
class ToolStatus:
    """One tool's state, as `kfstack tools list` and `kfstack doctor` report it."""

    name: str
    wanted: str
    installed: str | None  # the wanted version when installed; else another cached version, or None
    route: str | None
    path: Path | None  # the bin directory of the wanted version when installed
    binaries: tuple[str, ...]
    default: bool
    seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.installed == self.wanted


def tool_status(toolchain: Toolchain | None = None) -> list[ToolStatus]:
    """Every declared tool, installed or not, in the order of the versions file."""
    tools = toolchain or load_toolchain()
    result = []
    for tool in tools.tools.values():
        marker = store.installed_marker(tool)
        if marker is not None:
            result.append(ToolStatus(tool.name, tool.version, marker.version, marker.route, store.bin_dir(tool),
                                     tool.binaries, tool.default, marker.seconds))
            continue
        others = [v for v in store.installed_versions(tool) if v != tool.version]
        result.append(ToolStatus(tool.name, tool.version, others[-1] if others else None, None, None,
                                 tool.binaries, tool.default))
    return result
