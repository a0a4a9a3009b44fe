"""`kfstack smoke-job`: run the smoke suite inside the stack's cluster as a Job and collect its JUnit."""

from __future__ import annotations

import argparse
from pathlib import Path

from infra.commands.base import CommandFailed, Subparsers, failures, say

EXIT_FAILED_CHECKS = 1
EXIT_HARNESS = 2


def _run(args: argparse.Namespace) -> int:
    from infra.nodeimage.build import NodeImageError
    from infra.nodeimage.recipes import RecipeError
    from infra.smokejob.job import SmokeJobError, write_results
    from infra.smokejob.stack import run_for_stack
    from infra.toolchain import ToolMissingError
    from smoke_tests.run import CommandError

    with failures(SmokeJobError, CommandError, ToolMissingError, ValueError, RecipeError, NodeImageError,
                  exit_code=EXIT_HARNESS):
        result = run_for_stack(args.stack, image=args.image, pytest_args=args.pytest_args, timeout=args.timeout,
                               keep=args.keep, say=say)
    for path in write_results(result, Path(args.report_dir)):
        say(f"  {path}")
    if "junit.xml" not in result.files:
        raise CommandFailed("the Job's log holds no JUnit report (see smoke-job.log)", EXIT_HARNESS)
    return 0 if result.succeeded else EXIT_FAILED_CHECKS


def register(sub: Subparsers) -> None:
    p = sub.add_parser("smoke-job", help="run the smoke suite as a Job inside the stack's cluster",
                       description="Runs the smoke suite inside the stack's cluster, for clusters that "
                       "port-forward cannot reach: builds the suite's image here (or takes --image), loads it "
                       "into a kind cluster, applies a Namespace, ServiceAccount, ClusterRole, the stack's "
                       "outputs and a Secret with the users' passwords (KFSTACK_PASSWORD_<n> or "
                       "KFSTACK_USER_PASSWORD), waits for the Job, writes its JUnit, Markdown report and log "
                       "to --report-dir, and removes what it made. Exit 0: all checks passed or NOT RUN; "
                       "1: a check failed; 2: the Job could not be run.")
    p.add_argument("--stack", required=True, help="Pulumi stack whose cluster runs the Job")
    p.add_argument("--image", help="the suite's image (default: build it here, cached by its inputs)")
    p.add_argument("--report-dir", default="reports/smoke-job", help="where junit.xml, smoke.md and the log go")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the Job (default 3600)")
    p.add_argument("--keep", action="store_true", help="keep the Job's namespace and RBAC (debugging)")
    p.add_argument("pytest_args", nargs="*", help="extra arguments for the suite (after --), e.g. -- -m login")
    p.set_defaults(func=_run)
