"""`kfstack nodeimage`: build the kind node image here (source route), or show what a stack uses."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from infra.commands.base import Subparsers, failures, say
from infra.nodeimage.kindsrc import KindSourceError
from infra.nodeimage.steps import nodeimage_dir
from infra.toolchain.model import ToolchainError
from infra.versions import load_versions
from smoke_tests.run import CommandError


def _build(args: argparse.Namespace) -> int:
    from infra.nodeimage.build import NodeImageError, build_node_image

    with failures(NodeImageError, KindSourceError, ToolchainError, CommandError):
        build_node_image(say=say, sources=Path(args.sources).resolve() if args.sources else None)
    return 0


def _components(args: argparse.Namespace) -> int:
    from infra.nodeimage.build import NodeImageError
    from infra.nodeimage.components import build_component_images

    with failures(NodeImageError, ToolchainError, CommandError, KeyError):
        for ref in build_component_images(args.images, say=say,
                                          sources=Path(args.sources).resolve() if args.sources else None):
            print(ref)
    return 0


def _show(args: argparse.Namespace) -> int:
    print(f"release route: {load_versions().kind_node_image}")
    try:
        record = json.loads((nodeimage_dir() / "node-image.json").read_text())
    except (OSError, ValueError):
        print("source route: not built yet (kfstack nodeimage build)")
        return 0
    print(f"source route: {record['tag']} (inputs {record['key']}, built {record['built_at']})")
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("nodeimage", help="build the kind node image on this machine (no registry needed)",
                       description="The kind node image. `build` makes it from source: a Debian rootfs, kind's "
                       "base files, and Kubernetes, etcd, containerd, CNI, CoreDNS and local-path built by the "
                       "toolchain; every step is cached by its inputs, so a second build does nothing. Stacks "
                       "use it with cluster.kind.nodeImage set to the tag it prints.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="build (or find cached) every step, print each with its time")
    build.add_argument("--sources", help="toolchain source trees (default: $KFSTACK_TOOLCHAIN_SOURCES)")
    build.set_defaults(func=_build)
    comps = actions.add_parser("components", help="build the Kubeflow component images listed in "
                               "[component_images] (cached), under their upstream names")
    comps.add_argument("images", nargs="*", help="image references (default: all)")
    comps.add_argument("--sources", help="toolchain source trees (default: $KFSTACK_TOOLCHAIN_SOURCES)")
    comps.set_defaults(func=_components)
    actions.add_parser("show", help="the release image pin and the image built here").set_defaults(func=_show)
