"""The upgrade from the previous release: deploy it, create user state, move to the stack's own
release with `pulumi up`, and check what the upgrade kept, changed and deleted.

The data guard runs a preview first and refuses the update, before anything changes, when it would
replace or delete a PersistentVolumeClaim, PersistentVolume or StatefulSet, or a namespace that
holds one (unless the user allows it explicitly): a replace of a claim is a new, empty volume.
"""

from __future__ import annotations

import base64
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from infra.conformance.record import Check, write_junit
from infra.conformance.session import Run, line_logger
from infra.conformance.teardown import ObjectRef, crd_digests, objects_left, objects_to_check
from infra.conformance.workspace import set_release, stack_file

DATA_KINDS = ("PersistentVolumeClaim", "PersistentVolume", "StatefulSet")
DESTRUCTIVE_OPS = {auto.OpType.REPLACE, auto.OpType.CREATE_REPLACEMENT, auto.OpType.DELETE_REPLACED,
                   auto.OpType.DELETE, auto.OpType.DISCARD, auto.OpType.DISCARD_REPLACED}
PROBE = "kfstack-upgrade-probe"
PROBE_OWNER = "upgrade-probe@example.com"
PROBE_DATA = {"written-by": "kfstack conformance --upgrade-from", "value": "kept across the upgrade"}
# A custom resource whose CRD both releases ship (and change): a PodDefault, as users create them.
PROBE_CR = {"group": "kubeflow.org", "version": "v1alpha1", "plural": "poddefaults", "kind": "PodDefault",
            "crd": "poddefaults.kubeflow.org"}
PROFILE_NAMESPACE_TIMEOUT_S = 300.0


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


# ------------------------------------------------------------------------------------------------
# User state


def _kube(kubeconfig: str) -> Any:
    import yaml
    from kubernetes import config as kube_config

    return kube_config.new_client_from_config_dict(yaml.safe_load(kubeconfig))


def _create(create: Callable[[], Any]) -> None:
    """Create an object; one that is already there (a re-run on a kept stack) is kept as it is."""
    from kubernetes.client import ApiException

    try:
        create()
    except ApiException as exc:
        if exc.status != 409:
            raise


def create_user_state(api: Any, provider: str) -> dict[str, str]:
    """A second profile, objects in its namespace and a custom resource; returns their uids."""
    from kubernetes import client

    from infra.wait import wait_until

    custom = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)
    _create(lambda: custom.create_cluster_custom_object("kubeflow.org", "v1", "profiles", {
        "apiVersion": "kubeflow.org/v1", "kind": "Profile", "metadata": {"name": PROBE},
        "spec": {"owner": {"kind": "User", "name": PROBE_OWNER}}}))
    if provider == "sim":
        # No controller runs on a simulated cluster: make the namespace the profile controller would.
        _create(lambda: core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
            name=PROBE, labels={"app.kubernetes.io/part-of": "kubeflow-profile"},
            annotations={"owner": PROBE_OWNER}))))
    wait_until(lambda: (PROBE in {n.metadata.name for n in core.list_namespace().items}, PROBE),
               timeout=PROFILE_NAMESPACE_TIMEOUT_S, interval=3, what=f"profile namespace {PROBE}")
    _create(lambda: core.create_namespaced_config_map(PROBE, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=PROBE), data=dict(PROBE_DATA))))
    _create(lambda: core.create_namespaced_secret(PROBE, client.V1Secret(
        metadata=client.V1ObjectMeta(name=PROBE), data={"token": base64.b64encode(b"user-secret").decode()})))
    _create(lambda: core.create_namespaced_persistent_volume_claim(PROBE, client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name=PROBE), spec=client.V1PersistentVolumeClaimSpec(
            access_modes=["ReadWriteOnce"], resources=client.V1VolumeResourceRequirements(
                requests={"storage": "1Gi"})))))
    _create(lambda: custom.create_namespaced_custom_object(
        PROBE_CR["group"], PROBE_CR["version"], PROBE, PROBE_CR["plural"], {
            "apiVersion": f"{PROBE_CR['group']}/{PROBE_CR['version']}", "kind": PROBE_CR["kind"],
            "metadata": {"name": PROBE},
            "spec": {"desc": "kept across the upgrade", "selector": {"matchLabels": {PROBE: "true"}},
                     "env": [{"name": "PROBE", "value": "1"}]}}))
    return read_user_state(api)


def read_user_state(api: Any) -> dict[str, str]:
    """The same objects' uids now (a missing one raises), and the ConfigMap's data checked."""
    from kubernetes import client

    custom = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)
    cm = core.read_namespaced_config_map(PROBE, PROBE)
    if cm.data != PROBE_DATA:
        raise AssertionError(f"ConfigMap {PROBE}/{PROBE} changed: {cm.data}")
    return {"profile": custom.get_cluster_custom_object("kubeflow.org", "v1", "profiles", PROBE)["metadata"]["uid"],
            "configmap": cm.metadata.uid, "secret": core.read_namespaced_secret(PROBE, PROBE).metadata.uid,
            "pvc": core.read_namespaced_persistent_volume_claim(PROBE, PROBE).metadata.uid,
            "custom-resource": custom.get_namespaced_custom_object(
                PROBE_CR["group"], PROBE_CR["version"], PROBE, PROBE_CR["plural"], PROBE)["metadata"]["uid"]}


def live_uids(api: Any, refs: Iterable[ObjectRef]) -> dict[str, str]:
    """uid of each object that exists now, keyed by its description."""
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

    dyn = DynamicClient(api)
    uids = {}
    for ref in refs:
        try:
            res = dyn.resources.get(api_version=ref.api_version, kind=ref.kind)
            obj = res.get(name=ref.name, namespace=ref.namespace if res.namespaced else None)
        except (NotFoundError, ResourceNotFoundError):
            continue
        uids[str(ref)] = obj.metadata.uid
    return uids


def _all_refs(resources: list[dict[str, Any]]) -> list[ObjectRef]:
    """Every object of a state, namespaced ones included (for uid comparisons)."""
    from infra.conformance.teardown import _type_parts

    refs = []
    for res in resources:
        parts = _type_parts(res.get("type", ""))
        meta = (res.get("outputs") or {}).get("metadata") or {}
        if parts and "name" in meta:
            refs.append(ObjectRef(parts[0], parts[1], meta["name"], meta.get("namespace") or None))
        digests = crd_digests(res)
        if digests is not None:
            refs += [ObjectRef("apiextensions.k8s.io/v1", "CustomResourceDefinition", n) for n in sorted(digests)]
    return refs


def _crd_digests(resources: list[dict[str, Any]]) -> dict[str, str]:
    for res in resources:
        digests = crd_digests(res)
        if digests is not None:
            return dict(digests)
    return {}


# ------------------------------------------------------------------------------------------------
# The steps


def resolve_from_tree(run: Run) -> Path:
    from infra.manifests.source import check_tree, fetch_release

    assert run.opts.upgrade_from is not None
    if run.opts.from_manifests:
        return check_tree(run.opts.from_manifests)
    return fetch_release(run.opts.upgrade_from)


def upgrade_steps(run: Run) -> None:
    """up at the previous release, user state, the guarded upgrade, then its checks."""
    opts, record = run.opts, run.record
    assert run.stack is not None and opts.upgrade_from is not None
    with run.step("up-from", record_as="up"):
        tree = resolve_from_tree(run)
        set_release(run.workdir, opts.stack, opts.upgrade_from, tree)
        run.up("up-from")
    if record.failed_step:
        return
    provider = str((run.config.get("cluster") or {}).get("provider", ""))
    state: dict[str, Any] = {}
    with run.step("user-state", record_as="upgrade"):
        api = _kube(run.outputs()["kubeconfig"])
        state["user"] = create_user_state(api, provider)
        before = run.resources()
        state["resources"] = before
        state["uids"] = live_uids(api, [r for r in _all_refs(before) if r.kind in (*DATA_KINDS, "Namespace",
                                                                                  "CustomResourceDefinition")])
    if record.failed_step:
        return
    plan = Plan()
    with run.step("upgrade"):
        # Back to the stack's own config: its release and manifests (the copy made for up-from is replaced).
        shutil.copyfile(stack_file(opts.project_dir, opts.stack), run.workdir / f"Pulumi.{opts.stack}.yaml")
        from infra.bench.timeline import Timeline
        from infra.conformance.timeline import phase_seconds, timeline_rows

        timeline = Timeline()
        title = f"Upgrade {opts.upgrade_from} -> {record.release}: what the preview listed"
        try:
            plan, _ = guarded_up(run.stack, allow_data_loss=opts.allow_replace, parallel=opts.parallel,
                                 on_output=line_logger(run.logs / "upgrade.log"), on_event=timeline,
                                 before_up=timeline.start)
        except DataLossRefused as exc:
            (run.dir / "upgrade-preview.md").write_text(f"**Refused:** {exc}\n\n" + exc.plan.markdown(title),
                                                        encoding="utf-8")
            raise
        finally:
            record.phases["upgrade"] = phase_seconds(timeline)
            record.timelines["upgrade"] = timeline_rows(timeline)
        (run.dir / "upgrade-preview.md").write_text(plan.markdown(title), encoding="utf-8")
    if record.failed_step:
        return
    with run.step("upgrade-checks", record_as="upgrade") as step:
        checks = upgrade_checks(run, plan, state)
        record.checks += checks
        write_junit(run.dir / "junit" / "upgrade.xml", "upgrade", checks)
        failed = [c.id for c in checks if c.failed]
        step.detail = f"{len(checks) - len(failed)} of {len(checks)} upgrade checks passed"
        if failed:
            raise AssertionError("upgrade check(s) failed: " + ", ".join(failed))


def upgrade_checks(run: Run, plan: Plan, state: dict[str, Any]) -> list[Check]:
    """Each property of the upgrade as a check with its evidence."""
    assert run.stack is not None
    api = _kube(run.outputs()["kubeconfig"])
    before: list[dict[str, Any]] = state["resources"]
    after = run.resources()
    checks: list[Check] = []

    def check(name: str, fn: Callable[[], str]) -> None:
        t0 = time.monotonic()
        try:
            note, outcome = fn(), "passed"
        except Exception as exc:
            note, outcome = f"{type(exc).__name__}: {exc}", "failed"
        checks.append(Check(f"upgrade::{name}", outcome, round(time.monotonic() - t0, 2), note[:2000]))

    def preview_listed() -> str:
        if not plan.changes:
            raise AssertionError("the preview listed no change between the releases")
        return f"{len(plan.changes)} change(s): " + ", ".join(f"{k} {v}" for k, v in sorted(plan.summary.items()))

    def no_data_loss() -> str:
        # What the preview said would be lost, and what the user allowed of it (--allow-replace).
        planned = {f"{c.kind} {c.name}" for c in data_loss(plan, data_namespaces(before))}
        allowed = planned if run.opts.allow_replace else set()
        now = live_uids(api, [r for r in _all_refs(before) if r.kind in (*DATA_KINDS, "Namespace")])
        data_ns = data_namespaces(before)
        lost = [k for k, uid in state["uids"].items() if not k.startswith("CustomResourceDefinition")
                and (k.split(" ")[0] in DATA_KINDS or k.split(" ", 1)[1] in data_ns)
                and now.get(k) != uid]
        unexpected = [k for k in lost if k not in allowed]
        if unexpected:
            raise AssertionError(f"replaced or deleted without being allowed: {unexpected} "
                                 f"(the preview listed {sorted(planned) or 'none'})")
        kept = sum(1 for k in now if k.split(" ")[0] in DATA_KINDS)
        extra = f"; deleted as allowed by --allow-replace: {', '.join(sorted(lost))}" if lost else ""
        return f"{kept} volumes, claims and StatefulSets kept with their uids{extra}"

    def crds_in_place() -> str:
        old, new = _crd_digests(before), _crd_digests(after)
        kept = sorted(set(old) & set(new))
        changed = [n for n in kept if old[n] != new[n]]
        now = live_uids(api, [ObjectRef("apiextensions.k8s.io/v1", "CustomResourceDefinition", n) for n in kept])
        key = "CustomResourceDefinition {}"
        recreated = [n for n in kept if now.get(key.format(n)) != state["uids"].get(key.format(n))]
        if recreated:
            raise AssertionError(f"CRDs deleted and created again (new uid): {recreated}")
        return f"{len(changed)} of {len(kept)} CRDs both releases ship were changed, all in place (same uid)"

    def user_state_intact() -> str:
        now = read_user_state(api)
        if now != state["user"]:
            raise AssertionError(f"user objects replaced: before {state['user']}, after {now}")
        return "second profile, its namespace's ConfigMap, Secret, claim and a PodDefault kept (same uids)"

    def removed_deleted() -> str:
        new_refs = set(objects_to_check(after)) | set(_all_refs(after))
        gone = [r for r in _all_refs(before) if r not in new_refs]
        left = objects_left(run.outputs()["kubeconfig"], gone, timeout=120) if gone else []
        if left:
            raise AssertionError(f"objects the new release no longer has are still there: {left[:30]}")
        return f"{len(gone)} object(s) of {run.record.upgrade_from} that {run.record.release} dropped are deleted"

    def noop_after() -> str:
        plan2 = Plan()
        assert run.stack is not None
        result = run.stack.up(parallel=run.opts.parallel, on_event=plan2.on_event, color="never", show_secrets=False,
                              on_output=line_logger(run.logs / "upgrade-noop.log"))
        changes = {k: v for k, v in (result.summary.resource_changes or {}).items() if k != "same"}
        if plan2.changes or changes:
            raise AssertionError(f"the no-op up made {changes}: " + ", ".join(str(c) for c in plan2.changes[:30]))
        return f"no-op up: {result.summary.resource_changes}"

    for name, fn in (("preview-lists-changes", preview_listed), ("no-data-replaced-or-deleted", no_data_loss),
                     ("crds-updated-in-place", crds_in_place), ("user-state-intact", user_state_intact),
                     ("removed-objects-deleted", removed_deleted), ("no-op-up-after", noop_after)):
        check(name, fn)
    return checks
