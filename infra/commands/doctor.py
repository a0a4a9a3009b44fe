"""`kfstack doctor`: preflight checks (infra/doctor.py), each failure with its fix."""

from __future__ import annotations

import argparse

from infra.commands.base import Subparsers
from infra.doctor import run_checks


def register(sub: Subparsers) -> None:
    p = sub.add_parser("doctor", help="preflight checks: tools, container runtime, CPU, memory, disk, inotify",
                       description="Check this machine can run a stack; every failed check prints its fix.")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    results = run_checks()
    width = max(len(c.name) for c in results)
    for c in results:
        mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
        print(f"{mark} {c.name:<{width}}  {c.detail}" + ("" if c.ok else f"\n     fix: {c.fix}"))
    failed = [c for c in results if not c.ok and c.required]
    print(f"\n{len(results) - len([c for c in results if not c.ok])} ok, "
          f"{len([c for c in results if not c.ok and not c.required])} warnings, {len(failed)} failed")
    return 1 if failed else 0
