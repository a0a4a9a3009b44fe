"""`kfstack smoke-job`: run the smoke suite inside the stack's cluster as a Job and collect its JUnit."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

EXIT_FAILED_CHECKS = 1
EXIT_HARNESS = 2


def _say(line: str) -> None:
    print(line, flush=True)


def password_environment(users: int, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The users' passwords, as the suite reads them (KFSTACK_PASSWORD_<n>, KFSTACK_USER_PASSWORD)."""
    env = os.environ if environ is None else environ
    names = [f"KFSTACK_PASSWORD_{i}" for i in range(users)] + ["KFSTACK_USER_PASSWORD"]
    return {name: env[name] for name in names if env.get(name)}


def _run(args: argparse.Namespace) -> int:
    from infra.nodeimage.build import NodeImageError
    from infra.nodeimage.recipes import RecipeError
    from infra.run import CommandError
    from infra.smokejob.job import JobSpec, SmokeJob, SmokeJobError, write_results
    from infra.toolchain import ToolMissingError
    from infra.toolchain import find_binary as binary
    from smoke_tests.stack_outputs import read_outputs_json, write_kubeconfig

    try:
        outputs = read_outputs_json(args.stack)
        if not outputs.get("kubeconfig"):
            raise SmokeJobError(f"stack {args.stack} has no kubeconfig output; is it up (`pulumi up -s {args.stack}`)?")
        image = args.image or _build_image()
        if not args.image and outputs.get("clusterProvider") == "kind":
            cluster = str(outputs.get("clusterName") or "")
            _say(f"loading {image} into kind cluster {cluster}")
            from infra.clusters.kind import kind_cli

            kind_cli("load", "docker-image", "--name", cluster, image, timeout=900)
        environment = password_environment(len(outputs.get("users") or []))
        with tempfile.TemporaryDirectory(prefix="kfstack-smoke-job-") as tmp:
            kubeconfig = write_kubeconfig(str(outputs["kubeconfig"]), Path(tmp))
            job = SmokeJob(binary("kubectl"), kubeconfig, say=_say)
            result = job.run(JobSpec(image=image, outputs=outputs, environment=environment, args=args.pytest_args),
                             timeout=args.timeout, keep=args.keep)
    except (SmokeJobError, CommandError, ToolMissingError, ValueError, RecipeError, NodeImageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_HARNESS
    for path in write_results(result, Path(args.report_dir)):
        _say(f"  {path}")
    if "junit.xml" not in result.files:
        print("error: the Job's log holds no JUnit report (see smoke-job.log)", file=sys.stderr)
        return EXIT_HARNESS
    return 0 if result.succeeded else EXIT_FAILED_CHECKS


def _build_image() -> str:
    from infra.smokejob.image import build_suite_image

    return build_suite_image(say=_say)


def register(sub: argparse._SubParsersAction) -> None:
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
