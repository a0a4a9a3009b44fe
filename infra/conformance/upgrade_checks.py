"""The upgrade's checks: each property of an upgrade as a named function that returns its evidence
or raises, recorded one by one as the check `upgrade::<name>` (the function's name, with dashes).

They compare what was there before the upgrade (`Before`: taken once the previous release is up
and the user state is made) with what is there after it (`Upgraded`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.conformance.data_guard import DATA_KINDS, Plan, data_loss, data_namespaces
from infra.conformance.objects import (
    ObjectRef,
    all_refs,
    crd_digests_of,
    kube_client,
    live_uids,
    objects_left,
    objects_to_check,
)
from infra.conformance.record import Check
from infra.conformance.session import Run, line_logger
from infra.conformance.user_state import create_user_state, read_user_state


@dataclass(frozen=True)
class Before:
    """Before the upgrade: the user state's uids, the stack's state, and the live uids of its data
    objects, namespaces and CRDs."""

    user: dict[str, str]
    resources: list[dict[str, Any]]
    uids: dict[str, str]


@dataclass(frozen=True)
class Upgraded:
    """What the checks look at after the upgrade: the run, the preview's plan, what was there before,
    the stack's state now, and a client of the cluster."""

    run: Run
    plan: Plan
    before: Before
    after: list[dict[str, Any]]
    api: Any


def before_upgrade(run: Run, provider: str) -> Before:
    """Create the user state on the previous release and take what the checks compare against."""
    api = kube_client(run.outputs()["kubeconfig"])
    user = create_user_state(api, provider)
    resources = run.resources()
    uids = live_uids(api, [r for r in all_refs(resources)
                           if r.kind in (*DATA_KINDS, "Namespace", "CustomResourceDefinition")])
    return Before(user, resources, uids)


def preview_lists_changes(up: Upgraded) -> str:
    if not up.plan.changes:
        raise AssertionError("the preview listed no change between the releases")
    return f"{len(up.plan.changes)} change(s): " + ", ".join(f"{k} {v}" for k, v in sorted(up.plan.summary.items()))


def no_data_replaced_or_deleted(up: Upgraded) -> str:
    # What the preview said would be lost, and what the user allowed of it (--allow-replace).
    before = up.before.resources
    planned = {f"{c.kind} {c.name}" for c in data_loss(up.plan, data_namespaces(before))}
    allowed = planned if up.run.opts.allow_replace else set()
    now = live_uids(up.api, [r for r in all_refs(before) if r.kind in (*DATA_KINDS, "Namespace")])
    data_ns = data_namespaces(before)
    lost = [k for k, uid in up.before.uids.items() if not k.startswith("CustomResourceDefinition")
            and (k.split(" ")[0] in DATA_KINDS or k.split(" ", 1)[1] in data_ns)
            and now.get(k) != uid]
    unexpected = [k for k in lost if k not in allowed]
    if unexpected:
        raise AssertionError(f"replaced or deleted without being allowed: {unexpected} "
                             f"(the preview listed {sorted(planned) or 'none'})")
    kept = sum(1 for k in now if k.split(" ")[0] in DATA_KINDS)
    extra = f"; deleted as allowed by --allow-replace: {', '.join(sorted(lost))}" if lost else ""
    return f"{kept} volumes, claims and StatefulSets kept with their uids{extra}"


def crds_updated_in_place(up: Upgraded) -> str:
    old, new = crd_digests_of(up.before.resources), crd_digests_of(up.after)
    kept = sorted(set(old) & set(new))
    changed = [n for n in kept if old[n] != new[n]]
    now = live_uids(up.api, [ObjectRef("apiextensions.k8s.io/v1", "CustomResourceDefinition", n) for n in kept])
    key = "CustomResourceDefinition {}"
    recreated = [n for n in kept if now.get(key.format(n)) != up.before.uids.get(key.format(n))]
    if recreated:
        raise AssertionError(f"CRDs deleted and created again (new uid): {recreated}")
    return f"{len(changed)} of {len(kept)} CRDs both releases ship were changed, all in place (same uid)"


def user_state_intact(up: Upgraded) -> str:
    now = read_user_state(up.api)
    if now != up.before.user:
        raise AssertionError(f"user objects replaced: before {up.before.user}, after {now}")
    return "second profile, its namespace's ConfigMap, Secret, claim and a PodDefault kept (same uids)"


def removed_objects_deleted(up: Upgraded) -> str:
    new_refs = set(objects_to_check(up.after)) | set(all_refs(up.after))
    gone = [r for r in all_refs(up.before.resources) if r not in new_refs]
    left = objects_left(up.run.outputs()["kubeconfig"], gone, timeout=120) if gone else []
    if left:
        raise AssertionError(f"objects the new release no longer has are still there: {left[:30]}")
    return f"{len(gone)} object(s) of {up.run.record.upgrade_from} that {up.run.record.release} dropped are deleted"


def no_op_up_after(up: Upgraded) -> str:
    plan = Plan()
    stack = up.run.stack
    assert stack is not None
    result = stack.up(parallel=up.run.opts.parallel, on_event=plan.on_event, color="never", show_secrets=False,
                      on_output=line_logger(up.run.logs / "upgrade-noop.log"))
    changes = {k: v for k, v in (result.summary.resource_changes or {}).items() if k != "same"}
    if plan.changes or changes:
        raise AssertionError(f"the no-op up made {changes}: " + ", ".join(str(c) for c in plan.changes[:30]))
    return f"no-op up: {result.summary.resource_changes}"


# In this order: the no-op up comes last, after every check has looked at the upgrade's own result.
CHECKS: tuple[Callable[[Upgraded], str], ...] = (
    preview_lists_changes, no_data_replaced_or_deleted, crds_updated_in_place, user_state_intact,
    removed_objects_deleted, no_op_up_after)


def check_name(check: Callable[[Upgraded], str]) -> str:
    return check.__name__.replace("_", "-")


def run_check(check: Callable[[Upgraded], str], up: Upgraded) -> Check:
    """One check as the record keeps it: passed with its evidence, or failed with its error."""
    t0 = time.monotonic()
    try:
        note, outcome = check(up), "passed"
    except Exception as exc:
        note, outcome = f"{type(exc).__name__}: {exc}", "failed"
    return Check(f"upgrade::{check_name(check)}", outcome, round(time.monotonic() - t0, 2), note[:2000])


def upgrade_checks(run: Run, plan: Plan, before: Before) -> list[Check]:
    """Each property of the upgrade as a check with its evidence."""
    assert run.stack is not None
    api = kube_client(run.outputs()["kubeconfig"])
    up = Upgraded(run, plan, before, run.resources(), api)
    return [run_check(check, up) for check in CHECKS]
