"""`kfstack manifests`: the pinned Kubeflow manifests trees, fetched once into the user cache.

`pulumi up` fetches its release's tree when it first needs it; `./scripts/setup` fetches every
release in versions.toml ahead of time, so the render and simulated-cluster tests run on a machine
with network (the default release) and the upgrade tests too (the previous one).
"""

from __future__ import annotations

import argparse
import sys

from infra.commands.base import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser("manifests", help="fetch the pinned Kubeflow manifests trees, or print where they are",
                       description="The upstream Kubeflow manifests of the releases pinned in "
                                   "infra/versions.toml, fetched once into the user cache "
                                   "(<cache>/manifests/<release>) and verified against the recorded "
                                   "checksum. Offline, point KFSTACK_MANIFESTS or a stack's "
                                   "kubeflow.manifests at a local tree instead.")
    p.add_argument("action", choices=("fetch", "path"),
                   help="fetch: download what is missing (a second run downloads nothing); "
                        "path: print the cached tree, exit 1 when it is not there")
    p.add_argument("releases", nargs="*", metavar="RELEASE",
                   help="release tags such as v1.11.0 (default: fetch every pinned release; "
                        "path: the default release)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from infra.manifests.source import ManifestsError, cached_tree, fetch_release
    from infra.versions import UnknownReleaseError, load_versions

    versions = load_versions()
    if args.action == "path":
        tree = cached_tree(args.releases[0] if args.releases else versions.default_release)
        if tree is None:
            return 1
        print(tree)
        return 0
    failed = 0
    for release in args.releases or sorted(versions.releases, reverse=True):
        try:
            print(f"{release}: {fetch_release(release)}")
        except (ManifestsError, UnknownReleaseError) as exc:
            print(f"{release}: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0
