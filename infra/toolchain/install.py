"""Installing tools: pick a route, build into a staging directory, publish it, record a marker.

Idempotent by construction: a tool whose marker names the pinned version is skipped after a few
file checks, so `scripts/setup` costs seconds once everything is built. Each tool is installed
under a lock and moved into place in one rename, so an interrupted or concurrent run never
leaves a half-installed tool that looks finished.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from infra import paths
from infra.toolchain import gobuild, lock, release, store
from infra.toolchain.locate import tool_path, tools_env
from infra.toolchain.model import ModuleRoute, Platform, Route, Tool, Toolchain, ToolchainError, load_toolchain
from smoke_tests.run import CommandError, run

RouteChoice = Literal["auto", "release", "module", "source"]
SOURCES_ENV = "KFSTACK_TOOLCHAIN_SOURCES"
Say = Callable[[str], None]


@dataclass(frozen=True)
class Outcome:
    """What happened to one tool in one `install` call."""

    tool: Tool
    status: Literal["present", "installed", "failed", "skipped"]
    route: str | None = None
    seconds: float = 0.0
    error: str = ""


def sources_dir(flag: str | None) -> Path | None:
    """--sources, else $KFSTACK_TOOLCHAIN_SOURCES, else None (the source route then explains)."""
    value = flag or os.environ.get(SOURCES_ENV)
    return Path(value).expanduser().resolve() if value else None


def choose_route(tool: Tool, requested: RouteChoice, plat: Platform,
                 probe: Callable[[str], bool] = release.probe) -> Route:
    """The explicit route, or for `auto`: the release when reachable, else the module, else the source tree.

    Reachability is a HEAD request per asset (3 s each; fails at once without DNS). A module route
    that must first look up a tag's commit counts as reachable only when that lookup can work.
    """
    if requested != "auto":
        if requested not in tool.routes():
            raise ToolchainError(f"{tool.name} has no {requested} route; it has: {', '.join(tool.routes())}")
        return requested
    if tool.release is not None and all(probe(asset.url) for asset in release.assets(tool, plat)):
        return "release"
    if tool.module is not None and _module_reachable(tool, tool.module):
        return "module"
    if tool.source is not None:
        return "source"
    if tool.module is not None:
        return "module"  # its own error will say what it could not reach
    raise ToolchainError(f"no route can install {tool.name} here: its release downloads "
                         f"({release.assets(tool, plat)[0].url}, ...) are not reachable; set "
                         f"{release.MIRROR_ENV} to a mirror of them, or run where they are reachable")


def _module_reachable(tool: Tool, route: ModuleRoute) -> bool:
    """False only when the route must look up a tag's commit and the repository cannot be reached."""
    if not route.needs_commit or route.commit or lock.get("commits", f"{route.tag_repo} {tool.version}"):
        return True
    return gobuild.tag_reachable(tool, route)


def pulumi_plugin_dir(tool: Tool) -> Path:
    kind, name = tool.pulumi_plugin.split()
    pulumi_home = Path(os.environ.get("PULUMI_HOME") or Path.home() / ".pulumi")
    return pulumi_home / "plugins" / f"{kind}-{name}-{tool.version}"


def plugin_registered(tool: Tool) -> bool:
    """True when Pulumi's plugin cache holds this exact plugin version, completely installed."""
    plugin_dir = pulumi_plugin_dir(tool)
    kind, name = tool.pulumi_plugin.split()
    partial = plugin_dir.with_name(plugin_dir.name + ".partial")
    return os.access(plugin_dir / f"pulumi-{kind}-{name}", os.X_OK) and not partial.exists()


def register_plugin(tool: Tool, say: Say, *, fresh: bool = False) -> None:
    """Put a provider built here into Pulumi's plugin cache, so the engine never downloads one.

    `fresh` (the binary was just built) replaces whatever the cache held for that version.
    """
    if not tool.pulumi_plugin or (plugin_registered(tool) and not fresh):
        return
    kind, name = tool.pulumi_plugin.split()
    binary = store.bin_dir(tool) / tool.binaries[0]
    args = [str(tool_path("pulumi")), "plugin", "install", kind, name, tool.number, "--file", str(binary),
            "--reinstall"]
    try:
        run(args, timeout=300, env=tools_env())
    except CommandError as exc:
        raise ToolchainError(f"registering {tool.name} with Pulumi failed:\n{exc}") from None
    say(f"  pulumi plugin install {kind} {name} {tool.number} -> {pulumi_plugin_dir(tool)}")


def _build(tool: Tool, route: Route, plat: Platform, sources: Path | None, bin_dir: Path, work: Path,
           say: Say) -> None:
    if route == "release":
        release.install_release(tool, plat, bin_dir, work, say)
        return
    log = gobuild.BuildLog(tool, paths.cache_root() / "logs" / f"{tool.name}-{tool.version}-{route}.log", say)
    if route == "module":
        gobuild.build_module(tool, bin_dir, work, log)
    else:
        gobuild.build_source(tool, sources, bin_dir, work, log)


def install_tool(tool: Tool, *, route: RouteChoice = "auto", sources: Path | None = None, force: bool = False,
                 plat: Platform | None = None, say: Say = print) -> Outcome:
    """Install one tool unless its pinned version is already there; raises ToolchainError on failure."""
    plat = plat or Platform.host()
    with store.install_lock(tool):
        store.recover(tool)
        marker = store.installed_marker(tool)
        if marker is not None and not force:
            say(f"{tool.name} {tool.version}: present ({marker.route} route, took {marker.seconds:.0f}s on "
                f"{marker.installed_at[:10]})")
            register_plugin(tool, say)
            return Outcome(tool, "present", marker.route, marker.seconds)
        chosen = choose_route(tool, route, plat)
        say(f"{tool.name} {tool.version}: installing by the {chosen} route")
        start = time.monotonic()
        staging = store.staging_dir(tool)
        work = paths.cache_root() / "build" / f"{tool.name}-{tool.version}-{chosen}"
        try:
            _build(tool, chosen, plat, sources, staging / "bin", work, say)
            missing = [b for b in tool.binaries if not os.access(staging / "bin" / b, os.X_OK)]
            if missing:
                raise ToolchainError(f"{tool.name}: the {chosen} route did not produce {', '.join(missing)}")
            seconds = round(time.monotonic() - start, 1)
            store.write_marker(staging, store.Marker(
                name=tool.name, version=tool.version, route=chosen, seconds=seconds,
                installed_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), binaries=tool.binaries,
                go_toolchain=tool.go_toolchain if chosen != "release" else "",
                patches=store.patches_digest(tool) if chosen == "module" else ""))
            store.publish(staging, store.home(tool))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)  # kept only when the build failed, for inspection
        say(f"{tool.name} {tool.version}: installed in {seconds:.1f}s -> {store.bin_dir(tool)}")
        register_plugin(tool, say, fresh=True)
        return Outcome(tool, "installed", chosen, seconds)


def select(names: Iterable[str], toolchain: Toolchain | None = None) -> list[Tool]:
    """The named tools (or binaries) plus their requirements; no names means the default set."""
    tools = toolchain or load_toolchain()
    wanted = [tools.get(n) for n in names] or tools.defaults()
    return tools.with_requirements(wanted)


def install(names: Iterable[str] = (), *, route: RouteChoice = "auto", sources: Path | None = None,
            force: bool = False, say: Say = print) -> list[Outcome]:
    """Install tools in file order; one failure does not stop tools that do not depend on it."""
    outcomes: list[Outcome] = []
    failed: set[str] = set()
    for tool in select(names):
        blocked = [d for d in tool.requires if d in failed]
        if blocked:
            outcomes.append(Outcome(tool, "skipped", error=f"needs {', '.join(blocked)}, which failed"))
            failed.add(tool.name)
            continue
        try:
            outcomes.append(install_tool(tool, route=route, sources=sources, force=force, say=say))
        except ToolchainError as exc:
            say(f"{tool.name} {tool.version}: FAILED\n{exc}")
            outcomes.append(Outcome(tool, "failed", error=str(exc)))
            failed.add(tool.name)
    return outcomes
