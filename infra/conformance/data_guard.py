"""The upgrade's data guard: what a preview says an update will do, and a refusal, before anything
changes, when it would replace or delete what holds data.

A PersistentVolumeClaim, PersistentVolume or StatefulSet, or a namespace that holds one, replaced
or deleted is data lost (a replaced claim is a new, empty volume), unless the user allows it
explicitly (`kfstack conformance --allow-replace`). Objects kept on delete (retainOnDelete) are safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pulumi import automation as auto

DATA_KINDS = ("PersistentVolumeClaim", "PersistentVolume", "StatefulSet")
DESTRUCTIVE_OPS = {auto.OpType.REPLACE, auto.OpType.CREATE_REPLACEMENT, auto.OpType.DELETE_REPLACED,
                   auto.OpType.DELETE, auto.OpType.DISCARD, auto.OpType.DISCARD_REPLACED}


class DataLossRefused(RuntimeError):
    """The update would replace or delete objects that hold data; nothing was changed."""

    def __init__(self, message: str, plan: Plan) -> None:
        super().__init__(message)
        self.plan = plan


@dataclass
class PlannedChange:
    op: str
    urn: str
    type: str
    retained: bool = False  # retainOnDelete: a delete leaves the object in the cluster

    @property
    def kind(self) -> str:
        return self.type.rsplit(":", 1)[-1]

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]

    def __str__(self) -> str:
        return f"{self.op} {self.kind} {self.name}"


@dataclass
class Plan:
    """What a preview says an update will do (every step that is not `same`)."""

    changes: list[PlannedChange] = field(default_factory=list)
    summary: dict[str, int] = field(default_factory=dict)

    def on_event(self, event: auto.EngineEvent) -> None:
        pre = event.resource_pre_event
        if pre is not None and pre.metadata.op != auto.OpType.SAME:
            old = pre.metadata.old
            self.changes.append(PlannedChange(str(pre.metadata.op.value), pre.metadata.urn, pre.metadata.type,
                                              bool(old is not None and getattr(old, "retain_on_delete", False))))

    def markdown(self, title: str) -> str:
        lines = [f"# {title}", "", "| operation | count |", "|---|---|"]
        lines += [f"| {op} | {n} |" for op, n in sorted(self.summary.items())]
        lines += ["", "| operation | kind | resource |", "|---|---|---|"]
        lines += [f"| {c.op} | {c.kind} | `{c.name}` |" for c in sorted(self.changes, key=lambda c: (c.op, c.urn))]
        return "\n".join(lines) + "\n"


def data_namespaces(resources: Iterable[dict[str, Any]]) -> set[str]:
    """Namespaces that hold a claim or a StatefulSet, from a state export's resources."""
    found = set()
    for res in resources:
        if res.get("type", "").rsplit(":", 1)[-1] in ("PersistentVolumeClaim", "StatefulSet"):
            ns = ((res.get("outputs") or {}).get("metadata") or {}).get("namespace")
            if ns:
                found.add(ns)
    return found


def data_loss(plan: Plan, namespaces: set[str]) -> list[PlannedChange]:
    """The planned changes that would destroy data."""
    risky = []
    for change in plan.changes:
        if auto.OpType(change.op) not in DESTRUCTIVE_OPS or change.retained:
            continue
        if change.kind in DATA_KINDS or (change.kind == "Namespace" and change.name in namespaces):
            risky.append(change)
    return risky


def guarded_up(stack: auto.Stack, *, allow_data_loss: bool, parallel: int,
               on_output: Callable[[str], None], on_event: Callable[[auto.EngineEvent], None] | None = None,
               before_up: Callable[[], None] | None = None) -> tuple[Plan, auto.UpResult]:
    """Preview, refuse if data would be lost (unless allowed), then update (`before_up` runs
    between the two: the update's timeline starts there)."""
    namespaces = data_namespaces((stack.export_stack().deployment or {}).get("resources") or [])
    plan = Plan()
    preview = stack.preview(parallel=parallel, on_event=plan.on_event, on_output=on_output, color="never")
    plan.summary = {str(k.value if hasattr(k, "value") else k): v for k, v in preview.change_summary.items()}
    risky = data_loss(plan, namespaces)
    if risky and not allow_data_loss:
        raise DataLossRefused(
            f"the update would replace or delete {len(risky)} object(s) that hold data: "
            + "; ".join(str(c) for c in risky)
            + ". Nothing was changed. Back the data up, then allow it explicitly "
              "(kfstack conformance --allow-replace), or change the config so these objects stay.", plan)
    if before_up is not None:
        before_up()
    return plan, stack.up(parallel=parallel, on_output=on_output, on_event=on_event, color="never",
                          show_secrets=False)
