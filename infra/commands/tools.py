"""`kfstack tools`: install, list and locate the pinned external tools."""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from infra import paths
from infra.commands.base import Subparsers, failures, say
from infra.toolchain import install as installer
from infra.toolchain import release
from infra.toolchain.locate import tool_path, tool_status, tools_env
from infra.toolchain.model import ToolchainError


def _install(args: argparse.Namespace) -> int:
    sources = installer.sources_dir(args.sources)
    start = time.monotonic()
    say(f"toolchain: cache {paths.tools_dir()}, route {args.route}, sources {sources or '(none)'}")
    with failures(ToolchainError, exit_code=2):
        outcomes = installer.install(args.names, route=args.route, sources=sources, force=args.force, say=say)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("installed", "present", "failed", "skipped")}
    say(f"toolchain: {counts['installed']} installed, {counts['present']} already present, "
         f"{counts['failed']} failed, {counts['skipped']} skipped in {time.monotonic() - start:.1f}s; "
         f"routes: {', '.join(_route_summary(o) for o in outcomes)}")
    for outcome in outcomes:
        if outcome.status in ("failed", "skipped"):
            print(f"  {outcome.tool.name}: {outcome.status}: {outcome.error.splitlines()[0]}", file=sys.stderr)
    return 1 if counts["failed"] or counts["skipped"] else 0


def _route_summary(outcome: installer.Outcome) -> str:
    """"kind=release 4s", "dex=module (present)", "pulumi=FAILED": which route each tool took."""
    name = outcome.tool.name
    if outcome.status == "installed":
        return f"{name}={outcome.route} {outcome.seconds:.0f}s"
    if outcome.status == "present":
        return f"{name}={outcome.route} (present)"
    return f"{name}={outcome.status.upper()}"


def _list(args: argparse.Namespace) -> int:
    rows = [("tool", "version", "installed", "route", "path")]
    for status in tool_status():
        installed = "yes" if status.ok else (f"no (has {status.installed})" if status.installed else "no")
        if not status.default and not status.ok:
            installed += ", optional"
        rows.append((status.name, status.wanted, installed, status.route or "-", str(status.path or "-")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


def _path(args: argparse.Namespace) -> int:
    with failures(ToolchainError):
        print(tool_path(args.binary))
    return 0


def _env(args: argparse.Namespace) -> int:
    # The project's Pulumi home: the pinned provider is registered there by set-up, and Pulumi's
    # automatic debug log, which costs it half its CPU on large stacks, is off (docs/benchmarks.md).
    # Skipping intermediate checkpoints: the file backend otherwise rewrites tens of MB of state
    # after every resource (a full deploy took over 15 min with them, 2 without). An interrupted
    # update then converges on a re-run: creates adopt what exists (README, "If a pulumi up was killed").
    env = {**tools_env(), "PULUMI_HOME": str(paths.cache_root() / "pulumi-home"),
           "PULUMI_SKIP_CHECKPOINTS": "true"}
    for key, value in env.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("tools", help="install, list and locate the pinned external tools",
                                   description="The pinned toolchain of infra/versions.toml, installed into "
                                               f"{paths.tools_dir()}.")
    sub = parser.add_subparsers(dest="tools_command", required=True, metavar="ACTION")

    inst = sub.add_parser(
        "install", help="install tools (default: every default tool); skips what is present",
        description="Install the pinned tools into the cache. Release downloads are verified against "
                    "versions.toml, else the release's checksums file, and pinned in the cache's "
                    f"toolchain-lock.json. ${release.MIRROR_ENV} points downloads at a mirror laid out "
                    "like the upstream hosts.")
    inst.add_argument("names", nargs="*", metavar="NAME", help="tool or binary names (default: the default set)")
    inst.add_argument("--route", choices=["auto", "release", "module", "source"], default="auto",
                      help="auto (default): the release download if reachable, else the Go module, else the "
                           "source tree")
    inst.add_argument("--sources", metavar="DIR",
                      help=f"source trees for the source route (default: ${installer.SOURCES_ENV})")
    inst.add_argument("--force", action="store_true", help="reinstall even when the pinned version is present")
    inst.set_defaults(func=_install)

    sub.add_parser("list", help="each tool: version, installed?, route, path").set_defaults(func=_list)

    path = sub.add_parser("path", help="print the path of an installed binary")
    path.add_argument("binary")
    path.set_defaults(func=_path)

    sub.add_parser("env", help="print `export` lines for eval: PATH and Pulumi settings").set_defaults(func=_env)
