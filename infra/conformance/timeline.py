"""Per-resource timelines of a `pulumi up`, each resource put in the apply phase it belongs to.

`infra/bench/timeline.py` records when every step started and finished (by URN); this names each
step's phase the way `infra/apply.py` assigns it, so the report can group the latest run's
timeline by phase.
"""

from __future__ import annotations

from typing import Any

from infra.apply import PHASES, phase_of
from infra.bench.timeline import Timeline

CLUSTER = "cluster"
OTHER = "other"


def urn_type_and_name(urn: str) -> tuple[str, str]:
    """urn:pulumi:<stack>::<project>::<parent types$...$type>::<name> -> (type, name)."""
    parts = urn.split("::")
    return parts[2].split("$")[-1] if len(parts) > 3 else "", parts[-1]


def phase_of_step(type_: str, name: str) -> str:
    """The apply phase of a step: Kubernetes objects by infra.apply.phase_of, the CRD bundle in
    the foundation, a phase barrier in its own phase, the cluster and providers as "cluster"."""
    if type_.startswith("kubernetes:") and not type_.startswith("kubernetes:index"):
        _, api, kind = type_.split(":", 2)
        ns, _, obj_name = name.rpartition("/")
        meta = {"name": obj_name, **({"namespace": ns} if ns else {})}
        return phase_of({"apiVersion": api.removeprefix("core/"), "kind": kind, "metadata": meta})
    if name.endswith("-crds"):
        return "foundation"
    for phase in PHASES:
        if type_.startswith("pulumi-python:dynamic") and name.endswith(f"-{phase}"):
            return phase
    if type_.startswith(("pulumi:providers", "kubeflow-stacks:clusters")) or "Cluster" in type_ or \
            name.endswith("-kwok"):
        return CLUSTER
    return OTHER


def timeline_rows(timeline: Timeline) -> list[dict[str, Any]]:
    """Every step with a start and a finish, as rows the record and the report use."""
    rows = []
    for urn, times in sorted(timeline.steps.items(), key=lambda kv: kv[1][0]):
        if len(times) < 2:
            continue
        type_, name = urn_type_and_name(urn)
        if type_ in ("pulumi:pulumi:Stack",) or type_.startswith("kubeflow-stacks:kubeflow"):
            continue  # the stack and component wrappers span everything
        rows.append({"name": name, "type": type_, "phase": phase_of_step(type_, name),
                     "start": times[0], "end": times[-1]})
    return rows


def phase_seconds(timeline: Timeline) -> dict[str, float]:
    """Seconds per part of the up (the cluster, then each phase from the end of the one before)."""
    return {label.removeprefix("phase:"): seconds for label, seconds in timeline.phase_durations()}
