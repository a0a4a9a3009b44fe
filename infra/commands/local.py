"""`kfstack local up|down|status`: the local conformance target as a command."""

from __future__ import annotations

import argparse
from pathlib import Path

from infra.commands.base import Subparsers
from infra.errors import UserError
from infra.local_target.target import LocalTarget, LocalTargetError, default_workdir, describe


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "local", help="run the local conformance target (Dex, oauth2-proxy, gateway, model servers)",
        description="Start or stop the local conformance target on 127.0.0.1. `pytest smoke_tests "
                    "--local-target` attaches to a running one, or starts its own.")
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--dir", type=Path, default=None,
                        help=f"working directory for configs, state and logs (default {default_workdir()})")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for each component to answer (default 120)")
    parser.add_argument("--mnist-source", choices=("digits", "mnist"), default="digits",
                        help="dataset for the MNIST model (digits: bundled with scikit-learn, no network)")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    target = LocalTarget(args.dir, timeout=args.timeout, mnist_source=args.mnist_source)
    if args.action == "up":
        try:
            state = target.up(detach=True)
        except LocalTargetError as exc:
            raise UserError(f"local target failed to start: {exc}") from exc
        describe(state)
        return 0
    if args.action == "down":
        stopped = target.down()
        print(f"stopped: {', '.join(stopped)}" if stopped else f"nothing running in {target.workdir}")
        return 0
    status = target.status()
    if not status:
        print(f"no local target in {target.workdir}")
        return 1
    for name, condition in status.items():
        print(f"{name:40} {condition}")
    return 0 if all(s.startswith("running") for s in status.values()) else 1
