"""`kfstack`: render, doctor, tools, local target and benchmarks, one sub-command module each."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module defines `register(subparsers)`, adding its parser with `set_defaults(func=...)`;
# `func(args)` returns the exit code. Modules load lazily so `kfstack --help` stays fast.
COMMAND_MODULES = (
    "infra.commands.render",
    "infra.commands.doctor",
    "infra.commands.images",
    "infra.toolchain.command",
    "infra.local_target.command",
    "infra.bench.command",
    "infra.conformance.command",
    "infra.runtime.command",
    "infra.nodeimage.command",
    "infra.smokejob.command",
    "infra.commands.manifests",
    "infra.commands.config",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kfstack",
        description="Bring up a pinned Kubeflow with Pulumi, and prove it works.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # a command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
