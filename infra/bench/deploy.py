"""The deploy benchmark: Pulumi against the upstream apply loop, on fresh simulated clusters.

What it measures and prints is `kfstack bench deploy --help` (infra/commands/bench.py).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from infra.apply import apply_graph
from infra.automation import UP_PARALLEL
from infra.bench.available import AvailabilityWatch, expected_deployments
from infra.bench.cli import timed_up
from infra.bench.cpu import SAMPLE_INTERVAL_S, CpuMeter
from infra.bench.critical import Link, critical_path, describe
from infra.bench.timeline import Timeline
from infra.dependencies import Graph
from infra.doctor import machine

UPSTREAM_RETRY_SLEEP_S = 20
UPSTREAM_MAX_PASSES = 30
AVAILABLE_TIMEOUT_S = 900
NO_MATCH = re.compile(r'no matches for kind "([^"]+)"')


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

    cfg = parse_stack_config("bench", cfg_raw, set())
    # Cold: kustomize runs, the shared render cache is neither read nor emptied (others use it).
    timed("render-cold", lambda: render(cfg, manifests, cache=False), results)
    render(cfg, manifests)  # fills the render cache, should this tree never have been rendered
    return timed("render-warm", lambda: render(cfg, manifests), results).objects


def first_pass_failures(stderr: str) -> dict[str, Any]:
    """What kubectl refused in a failed pass: how many objects, by kind where it says (a custom
    resource sent before its CRD was established is "no matches for kind"), and the first lines."""
    lines = [line for line in stderr.splitlines() if line.startswith(("error:", "Error from server"))]
    kinds: dict[str, int] = {}
    for line in lines:
        found = NO_MATCH.search(line)
        kind = found.group(1) if found else "other"
        kinds[kind] = kinds.get(kind, 0) + 1
    return {"objects": len(lines), "kinds": dict(sorted(kinds.items())), "first": lines[:3]}


def upstream_apply(objects: list[dict[str, Any]], workdir: Path, results: dict[str, Any],
                   meter: CpuMeter | None = None) -> None:
    """Upstream's loop on a fresh sim cluster: apply until it succeeds, then wait for Deployments.

    Besides the loop's own figures, its first pass is followed to the end: a watch on the
    Deployments, started with the first pass, stamps the moment every one of them is available,
    and the single pass ends then or when kubectl's pass ends, whichever is later. When the first
    pass succeeds, that is upstream's clean single pass. When it fails (custom resources sent
    before their CRDs were established), every object but the refused ones went in, so the time
    until its Deployments are available is what a clean pass would at least take; the next pass,
    20 s later on a cluster that already has almost everything, is not a single pass from empty.
    """
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
    wait_available = [*kubectl, "wait", "--for=condition=Available", "deployment", "--all", "--all-namespaces",
                      f"--timeout={AVAILABLE_TIMEOUT_S}s"]
    watch: AvailabilityWatch | None = None
    try:
        t0 = time.monotonic()
        watch = AvailabilityWatch(kubectl, expected_deployments(objects), t0)
        passes = 0
        while True:
            passes += 1
            pass_start = time.monotonic()
            try:
                run([*kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(manifest)], timeout=900)
                failed = None
            except CommandError as exc:
                failed = exc
            if passes == 1:
                results["upstream-first-pass-applied"] = round(time.monotonic() - t0, 1)
                results["upstream-first-pass-ok"] = failed is None
                if failed is not None:
                    results["upstream-first-pass-refused"] = first_pass_failures(failed.stderr)
            if failed is None:
                break
            if passes >= UPSTREAM_MAX_PASSES:
                raise failed
            time.sleep(UPSTREAM_RETRY_SLEEP_S)
        results["upstream-applied"] = round(time.monotonic() - t0, 1)
        results["upstream-passes"] = passes
        run(wait_available, timeout=AVAILABLE_TIMEOUT_S + 30)
        results["upstream-available"] = round(time.monotonic() - t0, 1)
        results["upstream-last-pass"] = round(time.monotonic() - pass_start, 1)
        seen = watch.wait(timeout=60)
        if seen is None:
            raise RuntimeError("the Deployments' watch never saw every Deployment available, although "
                               "`kubectl wait` did")
        results["upstream-deployments-available-seen"] = seen
        first = results["upstream-first-pass-available"] = max(seen, results["upstream-first-pass-applied"])
        results["upstream-single-pass"] = first
        if meter is not None:
            results["cpu-upstream-single-pass"] = meter.between(t0, t0 + first).as_dict()
        # Whether the first pass's Deployments were all available before the second pass began
        # (otherwise the second pass's load slowed them, and the yardstick is the more lenient).
        results["upstream-first-pass-overlapped"] = passes > 1 and \
            first > results["upstream-first-pass-applied"] + UPSTREAM_RETRY_SLEEP_S
        t1 = time.monotonic()
        run([*kubectl, "delete", "--ignore-not-found", "--wait=false", "-f", str(manifest)], timeout=900)
        results["upstream-delete"] = round(time.monotonic() - t1, 1)
    finally:
        if watch is not None:
            watch.stop()
        provider.delete_cluster(props)


def record_timeline(timeline: Timeline, results: dict[str, Any], graph: Graph | None = None) -> None:
    """Split (a) into the cluster's creation and Kubeflow's apply, keep each phase's share and
    every step's times, and (given the render's graph) the critical path."""
    cluster = timeline.marks.get("cluster")
    if cluster is not None:
        results["pulumi-up-cluster"] = cluster
        results["pulumi-up-kubeflow"] = round(results["pulumi-up"] - cluster, 1)
    results["pulumi-up-phases"] = dict(timeline.phase_durations())
    results["pulumi-up-steps"] = dict(timeline.steps)
    if graph is not None:
        chain = critical_path(graph, timeline.steps, cluster)
        results["pulumi-up-critical-path"] = [[link.node, link.started, link.finished] for link in chain]


def step_span(timeline: Timeline) -> dict[str, float]:
    """When the first step began and the last one ended: before it, the CLI, the program and the
    plugins starting; after it, the state written and the CLI exiting."""
    spans = list(timeline.steps.values())
    if not spans:
        return {}
    return {"first-began": min(s[0] for s in spans), "last-ended": max(s[-1] for s in spans), "steps": len(spans)}


def deploy_bench(manifests: Path, *, skip_upstream: bool = False) -> dict[str, Any]:
    """Run (a) to (e) on `manifests` (a tree with `common/`); the figures, keyed by measure."""
    # Every CPU of the machine, as `machine()` counts them: the meter's total is the whole machine's.
    results: dict[str, Any] = {"machine": machine(), "cpus": os.cpu_count() or 1}
    meter = CpuMeter().start()
    try:
        _measure(manifests, results, meter, skip_upstream=skip_upstream)
    finally:
        meter.stop()
    if results.get("pulumi-up-kubeflow") is not None and results.get("upstream-single-pass"):
        results["ratio-kubeflow-to-upstream-single-pass"] = round(
            results["pulumi-up-kubeflow"] / results["upstream-single-pass"], 2)
    return results


def _measure(manifests: Path, results: dict[str, Any], meter: CpuMeter, *, skip_upstream: bool) -> None:
    from infra.automation import temp_stack

    with tempfile.TemporaryDirectory(prefix="kfstack-bench-") as tmp:
        work = Path(tmp)
        ts = temp_stack(work, prefix="bench")
        cluster = f"kfbench-{ts.name.split('-')[1]}"
        raw = bench_config(cluster, str(manifests))
        objects = render_times(raw, manifests, results)
        results["objects"] = len(objects)
        if not skip_upstream:
            upstream_apply(objects, work, results, meter)
        ts.set_config(raw)
        try:
            timeline = Timeline()

            def up() -> float:
                timeline.start()
                return timed_up(ts, on_event=timeline)

            up_began = time.monotonic()
            timed("pulumi-up", up, results)
            record_timeline(timeline, results, apply_graph(objects))
            if results.get("pulumi-up-cluster") is not None:
                results["cpu-pulumi-up-kubeflow"] = meter.between(
                    up_began + results["pulumi-up-cluster"], up_began + results["pulumi-up"]).as_dict()
            # The no-op as a user runs it (no event log); then once more with the engine's events,
            # for when its first step began and its last ended.
            noop_began = time.monotonic()
            timed("pulumi-up-noop", lambda: timed_up(ts), results)
            results["cpu-pulumi-up-noop"] = meter.between(
                noop_began, noop_began + results["pulumi-up-noop"]).as_dict()
            noop = Timeline()

            def up_noop_with_events() -> float:
                noop.start()
                return timed_up(ts, on_event=noop)

            timed("pulumi-up-noop-with-events", up_noop_with_events, results)
            results["pulumi-up-noop-steps"] = step_span(noop)
            results["state-bytes"] = len(ts.state_file_text())
        finally:
            timed("pulumi-destroy", lambda: ts.stack.destroy(parallel=UP_PARALLEL), results)
            ts.stack.workspace.remove_stack(ts.name, force=True)


RATIO_GOAL = 0.7
NOOP_GOAL_S = 5.0


def verdicts(r: dict[str, Any]) -> list[str]:
    """The issue's goals, as measured in this run: (a)'s Kubeflow part against upstream's single
    pass with its Deployments available, and the no-op."""
    lines = []
    kubeflow, single = r.get("pulumi-up-kubeflow"), r.get("upstream-single-pass")
    if kubeflow is not None and single:
        ratio = kubeflow / single
        lines.append(f"\n(a) Kubeflow / (b) first pass with Deployments available: {kubeflow:.1f}s / {single:.1f}s "
                     f"= {ratio:.2f}x (goal <= {RATIO_GOAL}x: {'met' if ratio <= RATIO_GOAL else 'NOT met'})")
    noop = r.get("pulumi-up-noop")
    if noop is not None:
        lines.append(f"(c) no-op pulumi up: {noop:.1f}s (goal <= {NOOP_GOAL_S:.0f}s: "
                     f"{'met' if noop <= NOOP_GOAL_S else 'NOT met'})")
    return lines


def cpu_lines(r: dict[str, Any]) -> list[str]:
    """Each span's CPU seconds, who spent them, and the floor they set: on this machine's CPUs no
    schedule of the same work ends sooner, whatever it waits for."""
    cpus, single = r.get("cpus") or 1, r.get("upstream-single-pass")
    lines = []
    # The no-op has a goal of its own (seconds); its floor against (b) would compare nothing.
    for key, label, against_b in (("cpu-pulumi-up-kubeflow", "(a) Kubeflow, once the cluster is ready", True),
                                  ("cpu-upstream-single-pass", "(b) upstream, first pass: Deployments available", True),
                                  ("cpu-pulumi-up-noop", "(c) no-op pulumi up", False)):
        usage = r.get(key)
        if not usage:
            continue
        seconds = usage["cpu-seconds"]
        floor = seconds / cpus
        vs = f" = {floor / single:.2f}x of (b)" if single and against_b else ""
        lines.append(f"{label}: {seconds:.1f} CPU-s in {usage['wall-seconds']:.1f}s; on {cpus} CPUs "
                     f"nothing ends before {floor:.1f}s{vs}")
        groups = ", ".join(f"{name} {s:.1f}" for name, s in usage["by-group"].items())
        lines.append(f"    {groups}")
    return lines


def first_pass_label(r: dict[str, Any]) -> str:
    if r.get("upstream-first-pass-ok", True):
        return "    first pass ok: a clean single pass"
    refused = r.get("upstream-first-pass-refused") or {}
    kinds = ", ".join(f"{k} {n}" for k, n in (refused.get("kinds") or {}).items())
    return f"    first pass refused {refused.get('objects', '?')} objects ({kinds})"


def print_table(r: dict[str, Any]) -> None:
    base = r.get("upstream-single-pass")
    rows = [("(a) pulumi up, full release (with the cluster)", r.get("pulumi-up")),
            ("    of which the sim cluster", r.get("pulumi-up-cluster")),
            ("    of which Kubeflow, once the cluster is ready", r.get("pulumi-up-kubeflow")),
            ("(b) upstream, first pass applied", r.get("upstream-first-pass-applied")),
            (first_pass_label(r), None),
            ("(b) upstream, first pass: Deployments available", base),
            (f"(b) upstream loop ({r.get('upstream-passes')} passes), all applied", r.get("upstream-applied")),
            ("(b) upstream loop, `kubectl wait` returned", r.get("upstream-available")),
            ("(c) no-op pulumi up", r.get("pulumi-up-noop")),
            ("    the same with the engine's event log", r.get("pulumi-up-noop-with-events")),
            ("(d) pulumi destroy", r.get("pulumi-destroy")),
            ("    upstream kubectl delete", r.get("upstream-delete")),
            ("(e) render, cold", r.get("render-cold")),
            ("(e) render, warm", r.get("render-warm"))]
    print(f"\nmachine: {r['machine']}; objects: {r.get('objects')}; state after (a): "
          f"{(r.get('state-bytes') or 0) / 1e6:.1f} MB")
    print(f"{'measure':<56} {'seconds':>8} {'vs (b)':>8}")
    for label, value in rows:
        ratio = f"{value / base:.2f}x" if value is not None and base else "-"
        shown = f"{value:.1f}" if value is not None else ""
        print(f"{label:<56} {shown:>8} {ratio if value is not None else '':>8}")
    for line in verdicts(r):
        print(line)
    cpu = cpu_lines(r)
    if cpu:
        print("\nCPU seconds (every process of the machine; by process, sampled every "
              f"{SAMPLE_INTERVAL_S}s):")
        for line in cpu:
            print("    " + line)
    phases = r.get("pulumi-up-phases") or {}
    if phases:
        print("\n(a) by part: " + ", ".join(f"{k.removeprefix('phase:')} {v:.1f}s" for k, v in phases.items()))
    chain = [Link(node, started, finished) for node, started, finished in r.get("pulumi-up-critical-path") or []]
    if chain:
        print("\n(a) critical path (seconds since `pulumi up` began):")
        for line in describe(chain):
            print("    " + line)
        total = r.get("pulumi-up")
        if total is not None:
            print(f"    {chain[-1].finished:6.1f} -> {total:6.1f}s  {total - chain[-1].finished:5.1f}s  "
                  "the engine's end: summary, state written, the CLI exits")
    steps = r.get("pulumi-up-noop-steps") or {}
    if steps:
        exited = r.get("pulumi-up-noop-with-events", 0)
        print(f"\n(c) with the event log: first step began {steps['first-began']:.1f}s, last ended "
              f"{steps['last-ended']:.1f}s, exit {exited:.1f}s ({steps['steps']} steps)")
