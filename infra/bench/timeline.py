"""When each part of a `pulumi up` finished, from the engine's event stream.

A `pulumi up` of a sim stack first creates the cluster, then applies Kubeflow phase by phase; the
upstream loop starts on a cluster that already exists. Marking when the Kubernetes provider is
ready (the cluster's kubeconfig is known) and when each phase barrier completes splits the total
into "cluster" and "Kubeflow", and shows which phase the time goes to.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from infra.apply import PHASES

PROVIDER_TYPE = "pulumi:providers:kubernetes"


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
        """"cluster" for the Kubernetes provider, "phase:<name>" for a phase barrier, else None."""
        name = urn.rsplit("::", 1)[-1]
        if type_ == PROVIDER_TYPE:
            return "cluster"
        for phase in PHASES:
            if type_.startswith("pulumi-python:dynamic") and name.endswith(f"-{phase}"):
                return f"phase:{phase}"
        return None

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
            if label and label not in self.marks:
                self.marks[label] = round(now, 1)

    def phase_durations(self) -> list[tuple[str, float]]:
        """(part, seconds) in order: the cluster, then each phase from the end of the one before."""
        rows: list[tuple[str, float]] = []
        last = 0.0
        for label in ["cluster", *(f"phase:{p}" for p in PHASES)]:
            if label in self.marks:
                rows.append((label, round(self.marks[label] - last, 1)))
                last = self.marks[label]
        return rows
