"""`kfstack runtime`: start, stop and inspect the container runtime kind stacks need."""

from __future__ import annotations

import argparse

from infra.commands.base import Subparsers, failures, say
from infra.errors import UserError
from infra.runtime import docker, routes, shim
from infra.runtime.checks import runtime_checks


def _start(args: argparse.Namespace) -> int:
    with failures(docker.RuntimeSetupError, RuntimeError):
        state = docker.ensure_running(say)
    if not state.answering:
        raise UserError(f"{state.detail}: install Docker (./scripts/setup does, as root on Debian)")
    return 0


def _stop(args: argparse.Namespace) -> int:
    with failures(docker.RuntimeSetupError):
        docker.stop_daemon(say, force=args.force)
    return 0


def _status(args: argparse.Namespace) -> int:
    failed = 0
    for check in runtime_checks():
        failed += not check.ok
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}"
              + ("" if check.ok else f"\n     fix: {check.fix}"))
    return 1 if failed else 0


def _shim(args: argparse.Namespace) -> int:
    print(shim.build_shim(say))
    return 0


def _release_routes(args: argparse.Namespace) -> int:
    removed = routes.release(args.owner, say)
    say(f"routes: {len(removed)} removed for {args.owner}")
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("runtime", help="start/stop the Docker daemon kind stacks need, and check it",
                       description="The container runtime for kind stacks. `start` uses a daemon that already "
                       "answers, or starts the installed dockerd detached (recording that kfstack started it); "
                       "`stop` stops only a daemon kfstack started. Hosts without CAP_SYS_RESOURCE get the "
                       "project's runc shim as that daemon's default runtime.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("start", help="start dockerd unless a daemon answers").set_defaults(func=_start)
    stop = actions.add_parser("stop", help="stop the daemon kfstack started (never another)")
    stop.add_argument("--force", action="store_true", help="stop it even while containers run")
    stop.set_defaults(func=_stop)
    actions.add_parser("status", help="runtime, cgroups, capabilities, privileged container, routes"
                       ).set_defaults(func=_status)
    actions.add_parser("shim", help="build the runc shim (cached) and print its path").set_defaults(func=_shim)
    rel = actions.add_parser("release-routes", help="drop an owner's hold on the blackhole routes "
                             "(removes routes nobody holds; for clusters deleted outside kfstack)")
    rel.add_argument("owner", help="the holder, as `kind:<cluster name>`")
    rel.set_defaults(func=_release_routes)
