"""`kfstack images`: every image a stack will run, after its image map: the list to mirror."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.paths import REPO_ROOT


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    from infra.commands.render import render_stack
    from infra.config import ImagesConfig
    from infra.errors import UserError
    from infra.patches.images import images_of
    from infra.toolchain.model import ToolchainError

    try:
        rendered = render_stack(args.stack, Path(args.stacks_dir), args.manifests,
                                adjust=(lambda cfg: cfg.model_copy(update={"images": ImagesConfig()}))
                                if args.upstream else None)
    except (UserError, ToolchainError) as exc:
        print(exc, file=sys.stderr)
        return 2
    for image in images_of(rendered.objects):
        print(image)
    return 0
