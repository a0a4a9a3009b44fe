"""`kfstack migrate`: move a stack deployed by an earlier kubeflow-stacks to this version's layout."""

from __future__ import annotations

import argparse
from pathlib import Path

from infra.commands.base import Subparsers, failures, say
from infra.errors import UsageError


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "migrate", help="move a stack made by an earlier kubeflow-stacks to this version's layout",
        description="Earlier versions made each RBAC object of the release a Pulumi resource of its own; "
                    "this one applies them as one resource. Before the first `pulumi up` with this "
                    "version, this moves the stack: it removes the old layout's annotation from those "
                    "objects on the cluster and drops their resources from the stack's state, so that "
                    "`pulumi up` adopts them instead of deleting them. Roles and bindings stay as they are. "
                    "A stack with nothing to move is left alone. `pulumi up` on a stack that needs it "
                    "refuses, changing nothing, and says to run this. Needs the stack's cluster reachable.")
    p.add_argument("--stack", required=True, help="the stack to move (as in `pulumi up -s STACK`)")
    p.add_argument("--project-dir", type=Path, default=Path("."), metavar="DIR",
                   help="the directory with the project's Pulumi.yaml (default: .)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from kubernetes.client.exceptions import ApiException
    from pulumi import automation as auto
    from urllib3.exceptions import HTTPError

    from infra.automation import pulumi_command, pulumi_env
    from infra.migrate import migrate

    if not (args.project_dir / "Pulumi.yaml").is_file():
        raise UsageError(f"--project-dir {args.project_dir}: no Pulumi.yaml there")
    opts = auto.LocalWorkspaceOptions(env_vars=pulumi_env(), pulumi_command=pulumi_command())
    try:
        stack = auto.select_stack(args.stack, work_dir=str(args.project_dir.resolve()), opts=opts)
    except auto.StackNotFoundError:
        raise UsageError(f"--stack {args.stack}: no such stack in the project's backend (`pulumi stack ls`)") from None

    def kubeconfig() -> str:
        outputs = stack.outputs()
        if "kubeconfig" not in outputs:
            raise UsageError(f"stack {args.stack} has no kubeconfig output: was its last `pulumi up` finished?")
        return str(outputs["kubeconfig"].value)

    with failures(auto.CommandError, ApiException, HTTPError, OSError):
        migrate(stack, kubeconfig, say)
    return 0
