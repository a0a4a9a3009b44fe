"""`kfstack conformance`: the nightly run any CI calls (its history page is `kfstack report`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from infra.commands.base import Subparsers
from infra.conformance.record import EXIT_CODES
from infra.errors import UsageError

CONFORMANCE_HELP = """\
Bring the stack up (from nothing, or from what is there), run `kfstack doctor` and the smoke suite
(`pytest smoke_tests --stack NAME`), collect diagnostics on failure, tear the stack down and verify
that nothing is left (a kind, minikube or sim cluster: the cluster is gone; any other cluster: none
of the stack's namespaces, webhook configurations, CRDs or cluster-scoped objects remain).

Each run writes a report directory (REPORT_DIR/<run id>/): summary.md, record.json (stack, release,
tool versions, each step's and each `pulumi up` phase's duration, each check's result), junit/,
smoke.md, logs/ and diagnostics/. The record is added to the history (see `kfstack report`).

Exit status: 0 all passed; 2 bad usage; otherwise the first step that failed:
""" + "\n".join(f"  {code}  {step}" for step, code in EXIT_CODES.items()) + """

The stack's passphrase comes from PULUMI_CONFIG_PASSPHRASE, users' passwords for the smoke suite from
KFSTACK_USER_PASSWORD / KFSTACK_PASSWORD_<n>, as for `pulumi up` and `pytest smoke_tests`.
"""


def register(sub: Subparsers) -> None:
    from infra.conformance.history import ENV_HISTORY

    p = sub.add_parser("conformance", help="up, doctor, smoke suite, teardown and its verification; a report",
                       description=CONFORMANCE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stack", required=True, help="stack name (stacks/Pulumi.<stack>.yaml)")
    p.add_argument("--report-dir", default="reports/conformance", metavar="DIR",
                   help="parent of the run's report directory (default: reports/conformance)")
    p.add_argument("--history", metavar="PATH", type=Path,
                   help=f"SQLite history to add the run to (default: ${ENV_HISTORY}, else the user cache)")
    p.add_argument("--twice", action="store_true",
                   help="after the teardown, bring the stack up again on the cleaned cluster, then tear it down")
    p.add_argument("--keep", action="store_true",
                   help="keep the stack up at the end (with --twice: the second one; the first is always torn down)")
    p.add_argument("--rerun-failed", action="store_true",
                   help="run only the checks that failed in this stack's last run, against the kept stack")
    p.add_argument("--upgrade-from", metavar="RELEASE",
                   help="deploy RELEASE first, create user state, then move the stack to its own release "
                        "with `pulumi up`, checking what the upgrade keeps, changes and deletes")
    p.add_argument("--from-manifests", metavar="PATH", type=Path,
                   help="manifests tree of the --upgrade-from release (default: fetch the pinned release)")
    p.add_argument("--allow-replace", action="store_true",
                   help="let the upgrade replace or delete volumes, claims, StatefulSets and namespaces "
                        "that hold data (refused by default, before anything changes)")
    p.add_argument("--checks", action="append", metavar="PATH", default=[],
                   help="pytest paths of the checks to run (repeatable; default: the smoke suite)")
    p.add_argument("-m", "--marker", metavar="EXPR", help="run only checks matching this pytest marker "
                   "expression (e.g. 'readiness or login')")
    p.add_argument("--in-cluster", action="store_true",
                   help="run the smoke suite as a Job inside the cluster (kfstack smoke-job), for clusters "
                   "that port-forward cannot reach")
    p.add_argument("--project-dir", type=Path, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from infra.conformance.runner import run_conformance
    from infra.conformance.session import ConformanceOptions
    from infra.paths import REPO_ROOT

    if args.allow_replace and not args.upgrade_from:
        raise UsageError("--allow-replace applies to --upgrade-from only")
    if args.from_manifests and not args.upgrade_from:
        raise UsageError("--from-manifests needs --upgrade-from RELEASE")
    if args.in_cluster and (args.rerun_failed or args.checks):
        raise UsageError("--in-cluster runs the suite's own checks from its image: not with --rerun-failed or "
                         "--checks (use -m to select)")
    opts = ConformanceOptions(
        stack=args.stack, project_dir=args.project_dir or REPO_ROOT, report_root=Path(args.report_dir),
        history=args.history, twice=args.twice, keep=args.keep, rerun_failed=args.rerun_failed,
        upgrade_from=args.upgrade_from, from_manifests=args.from_manifests, allow_replace=args.allow_replace,
        checks=[str(Path(c).resolve()) for c in args.checks], marker=args.marker, in_cluster=args.in_cluster)
    return run_conformance(opts).exit_code  # a UsageError (bad --stack, nothing to rerun) exits 2
