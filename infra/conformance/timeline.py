"""Per-resource timelines of a `pulumi up`, each resource put in the part of the release it belongs to.

`infra/bench/timeline.py` records when every step started and finished (by URN) and names each
step's part (`phase_of_step`, after `infra.apply.phase_of`), so the report can group the latest
run's timeline by part.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from infra.bench.timeline import Timeline, phase_of_step, urn_type_and_name
from infra.conformance.record import RunRecord


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
    """Seconds per part of the up (the cluster, then each part from the latest mark before it)."""
    return {label.removeprefix("phase:"): seconds for label, seconds in timeline.phase_durations()}


@contextlib.contextmanager
def recorded(record: RunRecord, label: str) -> Iterator[Timeline]:
    """A timeline for one `pulumi up` (start it when the update starts), kept in the run's record
    under `label` whether the update succeeds or not."""
    timeline = Timeline()
    try:
        yield timeline
    finally:
        record.phases[label] = phase_seconds(timeline)
        record.timelines[label] = timeline_rows(timeline)
