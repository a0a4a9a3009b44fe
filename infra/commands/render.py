"""`kfstack render`: the exact objects a stack applies, as multi-document YAML."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.commands.base import Subparsers, failures
from infra.paths import REPO_ROOT


def register(sub: Subparsers) -> None:
    p = sub.add_parser("render", help="print the objects a stack applies (multi-document YAML)",
                       description="Render the stack's Kubeflow objects exactly as `pulumi up` applies "
                                   "them. Secrets appear as Secret objects holding bcrypt hashes, never "
                                   "plain passwords.")
    p.add_argument("--stack", required=True, help="stack name (stacks/Pulumi.<stack>.yaml)")
    p.add_argument("--manifests", metavar="PATH", help="local Kubeflow manifests tree (default: the "
                   "stack's kubeflow.manifests, $KFSTACK_MANIFESTS, or the pinned release fetched once)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--stacks-dir", default=str(REPO_ROOT / "stacks"), help=argparse.SUPPRESS)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from infra.errors import UserError
    from infra.manifests.stack import read_stack_values, render_stack
    from infra.toolchain.model import ToolchainError

    values = read_stack_values(args.stack, Path(args.stacks_dir))  # no such stack, or secrets unreadable: 1
    with failures(UserError, ToolchainError, exit_code=2):  # the stack's config, manifests or tools: 2
        rendered = render_stack(values, args.manifests)
    text = rendered.to_yaml()
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {len(rendered.objects)} objects of Kubeflow {rendered.release} to {args.output} "
              f"(adjustments: {', '.join(rendered.adjustments)})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
