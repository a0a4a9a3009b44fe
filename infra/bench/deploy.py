"""The deploy benchmark (`kfstack bench deploy`): Pulumi against the upstream apply loop, on fresh
simulated clusters.

Measures, in one run: (a) `pulumi up` of the full release; (b) upstream's method, the rendered
objects applied with `kubectl apply --server-side --force-conflicts`, repeated with a 20 s sleep
until it succeeds, then waited on until every Deployment is available; (c) a no-op `pulumi up`;
(d) `pulumi destroy`; (e) render, cold and warm. Prints a table with ratios against (b) and
writes JSON.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from infra.automation import UP_PARALLEL
from infra.bench.timeline import Timeline
from infra.doctor import machine

UPSTREAM_RETRY_SLEEP_S = 20
UPSTREAM_MAX_PASSES = 30
AVAILABLE_TIMEOUT_S = 900


def timed(label: str, fn: Callable[[], Any], results: dict[str, Any]) -> Any:
    print(f"--> {label} ...", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    value = fn()
    results[label] = round(time.monotonic() - t0, 1)
    print(f"    {label}: {results[label]:.1f}s", file=sys.stderr, flush=True)
    return value


def bench_config(cluster: str, manifests: str) -> dict[str, Any]:
    return {"devStack": True, "cluster": {"provider": "sim", "name": cluster, "sim": {"nodes": 2}},
            "kubeflow": {"release": "v1.11.0", "components": "full", "manifests": manifests},
            "storage": {"mode": "static", "defaultClass": "kf-static"}}


def render_times(cfg_raw: dict[str, Any], manifests: Path, results: dict[str, Any]) -> list[dict[str, Any]]:
    from infra.config import parse_stack_config
    from infra.manifests.render import render
    from infra.paths import cache_root

    cfg = parse_stack_config("bench", cfg_raw, set())
    shutil.rmtree(cache_root() / "render", ignore_errors=True)
    timed("render-cold", lambda: render(cfg, manifests), results)
    return timed("render-warm", lambda: render(cfg, manifests), results).objects


def upstream_apply(objects: list[dict[str, Any]], workdir: Path, results: dict[str, Any]) -> None:
    """Upstream's loop on a fresh sim cluster: apply until it succeeds, then wait for Deployments."""
    from infra.clusters.sim import SimClusterProvider
    from infra.toolchain import tool_path
    from smoke_tests.run import CommandError, run

    props = {"name": "kfbench-upstream", "nodes": 2, "nodeCpu": "16", "nodeMemory": "64Gi", "nodePods": 250}
    provider = SimClusterProvider()
    if provider.cluster_exists(props):
        provider.delete_cluster(props)
    kubeconfig = workdir / "upstream.kubeconfig"
    kubeconfig.write_text(provider.create_cluster(props))
    manifest = workdir / "upstream.yaml"
    manifest.write_text(yaml.safe_dump_all(objects))
    kubectl = [str(tool_path("kubectl")), "--kubeconfig", str(kubeconfig)]
    try:
        t0 = time.monotonic()
        passes = 0
        while True:
            passes += 1
            try:
                run([*kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(manifest)], timeout=900)
                break
            except CommandError:
                if passes >= UPSTREAM_MAX_PASSES:
                    raise
                time.sleep(UPSTREAM_RETRY_SLEEP_S)
        results["upstream-applied"] = round(time.monotonic() - t0, 1)
        results["upstream-passes"] = passes
        run([*kubectl, "wait", "--for=condition=Available", "deployment", "--all", "--all-namespaces",
             f"--timeout={AVAILABLE_TIMEOUT_S}s"], timeout=AVAILABLE_TIMEOUT_S + 30)
        results["upstream-available"] = round(time.monotonic() - t0, 1)
        t1 = time.monotonic()
        run([*kubectl, "delete", "--ignore-not-found", "--wait=false", "-f", str(manifest)], timeout=900)
        results["upstream-delete"] = round(time.monotonic() - t1, 1)
    finally:
        provider.delete_cluster(props)


def record_timeline(timeline: Timeline, results: dict[str, Any]) -> None:
    """Split (a) into the cluster's creation and Kubeflow's apply, and keep each phase's share."""
    cluster = timeline.marks.get("cluster")
    if cluster is not None:
        results["pulumi-up-cluster"] = cluster
        results["pulumi-up-kubeflow"] = round(results["pulumi-up"] - cluster, 1)
    results["pulumi-up-phases"] = dict(timeline.phase_durations())
    results["pulumi-up-steps"] = dict(timeline.steps)


def deploy_bench(manifests: Path, *, skip_upstream: bool = False) -> dict[str, Any]:
    """Run (a) to (e) on `manifests` (a tree with `common/`); the figures, keyed by measure."""
    from infra.automation import temp_stack

    results: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory(prefix="kfstack-bench-") as tmp:
        work = Path(tmp)
        ts = temp_stack(work, prefix="bench")
        cluster = f"kfbench-{ts.name.split('-')[1]}"
        raw = bench_config(cluster, str(manifests))
        objects = render_times(raw, manifests, results)
        results["objects"] = len(objects)
        if not skip_upstream:
            upstream_apply(objects, work, results)
        ts.set_config(raw)
        try:
            timeline = Timeline()

            def up() -> Any:
                timeline.start()
                return ts.stack.up(parallel=UP_PARALLEL, on_event=timeline)

            timed("pulumi-up", up, results)
            record_timeline(timeline, results)
            timed("pulumi-up-noop", lambda: ts.stack.up(parallel=UP_PARALLEL), results)
        finally:
            timed("pulumi-destroy", lambda: ts.stack.destroy(parallel=UP_PARALLEL), results)
            ts.stack.workspace.remove_stack(ts.name, force=True)
    return results


def print_table(r: dict[str, Any]) -> None:
    base = r.get("upstream-available")
    rows = [("(a) pulumi up, full release (with the cluster)", r.get("pulumi-up")),
            ("    of which the sim cluster", r.get("pulumi-up-cluster")),
            ("    of which Kubeflow, once the cluster is ready", r.get("pulumi-up-kubeflow")),
            ("(b) upstream apply loop, all applied", r.get("upstream-applied")),
            ("(b) upstream apply loop, Deployments available", base),
            ("(c) no-op pulumi up", r.get("pulumi-up-noop")),
            ("(d) pulumi destroy", r.get("pulumi-destroy")),
            ("    upstream kubectl delete", r.get("upstream-delete")),
            ("(e) render, cold", r.get("render-cold")),
            ("(e) render, warm", r.get("render-warm"))]
    print(f"\nmachine: {r['machine']}; objects: {r.get('objects')}; upstream passes: {r.get('upstream-passes')}")
    print(f"{'measure':<50} {'seconds':>8} {'vs (b)':>8}")
    for label, value in rows:
        ratio = f"{value / base:.2f}x" if value is not None and base else "-"
        shown = f"{value:.1f}" if value is not None else "-"
        print(f"{label:<50} {shown:>8} {ratio:>8}")
    phases = r.get("pulumi-up-phases") or {}
    if phases:
        print("\n(a) by part: " + ", ".join(f"{k.removeprefix('phase:')} {v:.1f}s" for k, v in phases.items()))
