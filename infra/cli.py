"""`kfstack`: render, doctor, tools, local target, conformance and benchmarks, one sub-command module each.

Every sub-command lives in `infra/commands/<name>.py`. A `UserError` from any of them is reported
here, and only here: one `error: ...` line on standard error and the error's exit status (1 unless
the command says otherwise). Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from infra.errors import UserError

# Each module defines `register(subparsers)`, adding its parser with `set_defaults(func=...)`;
# `func(args)` returns the exit code. In this order `kfstack --help` lists them. The modules import
# their libraries inside their functions, so `kfstack --help` stays fast.
COMMAND_MODULES = (
    "infra.commands.render",
    "infra.commands.doctor",
    "infra.commands.images",
    "infra.commands.tools",
    "infra.commands.local",
    "infra.commands.bench",
    "infra.commands.conformance",
    "infra.commands.migrate",
    "infra.commands.report",
    "infra.commands.runtime",
    "infra.commands.nodeimage",
    "infra.commands.smoke_job",
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
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
