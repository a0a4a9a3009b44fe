"""`kfstack bench deploy`: Pulumi against the upstream apply loop, on fresh simulated clusters.

Measures, in one run: (a) `pulumi up` of the full release; (b) upstream's method, the rendered
objects applied with `kubectl apply --server-side --force-conflicts`, repeated with a 20 s sleep
until it succeeds, then waited on until every Deployment is available; (c) a no-op `pulumi up`;
(d) `pulumi destroy`; (e) render, cold and warm. Prints a table with ratios against (b), the
critical path of (a), and the CPU seconds (a), (b) and (c) used, by process, with the floor they set
on this machine: no schedule of that much work ends sooner on its CPUs. Writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from infra.commands.base import Subparsers
from infra.errors import UsageError


def register(sub: Subparsers) -> None:
    p = sub.add_parser("bench", help="benchmarks (prints figures, writes JSON)")
    bench = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    d = bench.add_parser("deploy", help="pulumi up vs upstream's kubectl apply loop on fresh sim clusters",
                         description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--manifests", metavar="PATH", help="Kubeflow manifests tree (default: $KFSTACK_MANIFESTS)")
    d.add_argument("-o", "--output", default="bench-deploy.json", help="JSON results file")
    d.add_argument("--skip-upstream", action="store_true", help="skip (b), the upstream apply loop")
    d.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from infra.bench.deploy import deploy_bench, print_table

    manifests = Path(args.manifests or os.environ.get("KFSTACK_MANIFESTS", "")).resolve()
    if not (manifests / "common").is_dir():
        raise UsageError("need a manifests tree: --manifests PATH or KFSTACK_MANIFESTS")
    results = deploy_bench(manifests, skip_upstream=args.skip_upstream)
    print_table(results)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.output}")
    return 0
