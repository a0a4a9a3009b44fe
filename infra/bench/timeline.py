"""When each part of a `pulumi up` finished, from the engine's event stream.

A `pulumi up` of a sim stack first creates the cluster, then applies Kubeflow; the upstream loop
starts on a cluster that already exists. Marking when the Kubernetes provider is ready (the
cluster's kubeconfig is known) splits the total into "cluster" and "Kubeflow"; marking when the
last object of each part of the release (`infra.apply.phase_of`) is done shows where the time
goes. The parts overlap (the apply follows each object's own dependencies, not phases), so each
part's share is counted from the latest mark before it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from infra.apply import PHASES, phase_of

PROVIDER_TYPE = "pulumi:providers:kubernetes"
CLUSTER = "cluster"
OTHER = "other"


def urn_type_and_name(urn: str) -> tuple[str, str]:
    """urn:pulumi:<stack>::<project>::<parent types$...$type>::<name> -> (type, name)."""
    parts = urn.split("::")
    return parts[2].split("$")[-1] if len(parts) > 3 else "", parts[-1]


def phase_of_step(type_: str, name: str) -> str:
    """The part of the release a step belongs to: Kubernetes objects by infra.apply.phase_of, the
    CRD bundle, its served groups and the RBAC set in the foundation, admission gates with the webhooks, the cluster
    and providers as "cluster"."""
    if type_.startswith("kubernetes:") and not type_.startswith("kubernetes:index"):
        _, api, kind = type_.split(":", 2)
        ns, _, obj_name = name.rpartition("/")
        meta = {"name": obj_name, **({"namespace": ns} if ns else {})}
        return phase_of({"apiVersion": api.removeprefix("core/"), "kind": kind, "metadata": meta})
    if type_.startswith("pulumi-python:dynamic") and (name.endswith(("-crds", "-rbac")) or "-crds-" in name):
        return "foundation"
    if type_.startswith("pulumi-python:dynamic") and "-admission-" in name:
        return "webhooks"
    if type_.startswith(("pulumi:providers", "kubeflow-stacks:clusters")) or "Cluster" in type_ or \
            name.endswith("-kwok"):
        return CLUSTER
    return OTHER


class Timeline:
    """An Automation API `on_event` callback recording seconds since `start()` for key resources."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self.marks: dict[str, float] = {}
        self.resources_done = 0
        self.steps: dict[str, list[float]] = {}  # URN -> [started, finished] (seconds)

    def start(self) -> None:
        self._t0 = time.monotonic()
        self.marks.clear()
        self.steps.clear()
        self.resources_done = 0

    def label_of(self, urn: str, type_: str) -> str | None:
        """"cluster" for the Kubernetes provider, "phase:<part>" for a step of a part of the
        release, else None."""
        if type_ == PROVIDER_TYPE:
            return "cluster"
        phase = phase_of_step(type_, urn_type_and_name(urn)[1])
        return f"phase:{phase}" if phase in PHASES else None

    def __call__(self, event: Any) -> None:
        pre = getattr(event, "resource_pre_event", None)
        if pre is not None:
            with self._lock:
                self.steps.setdefault(pre.metadata.urn, [round(time.monotonic() - self._t0, 2)])
            return
        out = getattr(event, "res_outputs_event", None)
        if out is None:
            return
        meta = out.metadata
        label = self.label_of(meta.urn, meta.type)
        now = time.monotonic() - self._t0
        with self._lock:
            self.resources_done += 1
            self.steps.setdefault(meta.urn, [round(now, 2)]).append(round(now, 2))
            if label == "cluster" and label not in self.marks:
                self.marks[label] = round(now, 1)
            elif label and label != "cluster":  # a part is done when its last step is
                self.marks[label] = max(self.marks.get(label, 0.0), round(now, 1))

    def phase_durations(self) -> list[tuple[str, float]]:
        """(part, seconds) in order: the cluster, then each part from the latest mark before it
        (0 for a part that was done by then); the shares add up to the last mark."""
        rows: list[tuple[str, float]] = []
        last = 0.0
        for label in ["cluster", *(f"phase:{p}" for p in PHASES)]:
            if label in self.marks:
                rows.append((label, round(max(0.0, self.marks[label] - last), 1)))
                last = max(last, self.marks[label])
        return rows
