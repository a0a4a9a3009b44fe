"""`kfstack images`: every image a stack will run, after its image map: the list to mirror."""

from __future__ import annotations

import argparse
from pathlib import Path

from infra.commands.base import Subparsers, failures
from infra.paths import REPO_ROOT


def register(sub: Subparsers) -> None:
    p = sub.add_parser("images", help="list every container image the stack runs (after its image map)",
                       description="List every container image, init containers included, that the "
                                   "stack's objects run, after the stack's `images` map: what an "
                                   "air-gapped installation mirrors. One image per line, sorted.")
    p.add_argument("--stack", required=True, help="stack name (stacks/Pulumi.<stack>.yaml)")
    p.add_argument("--manifests", metavar="PATH", help="local Kubeflow manifests tree (as for render)")
    p.add_argument("--upstream", action="store_true",
                   help="list the images before the map: the upstream names to mirror from")
    p.add_argument("--stacks-dir", default=str(REPO_ROOT / "stacks"), help=argparse.SUPPRESS)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from infra.config import ImagesConfig
    from infra.errors import UserError
    from infra.manifests.stack import read_stack_values, render_stack
    from infra.patches.images import images_of
    from infra.toolchain.model import ToolchainError

    values = read_stack_values(args.stack, Path(args.stacks_dir))  # no such stack, or secrets unreadable: 1
    with failures(UserError, ToolchainError, exit_code=2):  # the stack's config, manifests or tools: 2
        rendered = render_stack(values, args.manifests,
                                adjust=(lambda cfg: cfg.model_copy(update={"images": ImagesConfig()}))
                                if args.upstream else None)
    for image in images_of(rendered.objects):
        print(image)
    return 0
