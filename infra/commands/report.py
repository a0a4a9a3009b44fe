"""`kfstack report`: the conformance history (`kfstack conformance`) as one self-contained HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path

from infra.commands.base import Subparsers
from infra.errors import UsageError


def register(sub: Subparsers) -> None:
    from infra.conformance.history import ENV_HISTORY

    r = sub.add_parser("report", help="render the conformance history as one self-contained HTML page",
                       description="One offline HTML page from the history: each check's result over runs, "
                                   "`pulumi up` time per phase over runs, the latest run's timeline grouped by "
                                   "phase, and a regression flag (see infra/conformance/report.py for its margin).")
    r.add_argument("--history", metavar="PATH", type=Path, action="append", default=[],
                   help=f"SQLite history, repeatable (default: ${ENV_HISTORY}, else the user cache)")
    r.add_argument("--histories-in", metavar="DIR", type=Path,
                   help="also every *.sqlite history under DIR (the artifacts of a night's jobs)")
    r.add_argument("-o", "--output", default="reports/conformance/report.html", type=Path, metavar="FILE",
                   help="HTML file to write (default: reports/conformance/report.html)")
    r.add_argument("--stack", help="only this stack's runs")
    r.add_argument("--last", type=int, default=30, metavar="N", help="the last N runs (default 30)")
    r.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from infra.conformance.report import write_report

    if args.last < 1:
        raise UsageError("--last must be at least 1")
    histories = list(args.history)
    if args.histories_in:
        if not args.histories_in.is_dir():
            raise UsageError(f"--histories-in {args.histories_in}: not a directory")
        found = sorted(args.histories_in.rglob("*.sqlite"))
        if not found:
            raise UsageError(f"--histories-in {args.histories_in}: no *.sqlite history there")
        histories += found
    path = write_report(histories, args.output, args.stack, args.last)
    print(f"wrote {path}")
    return 0
