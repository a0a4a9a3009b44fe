"""Moving a stack deployed by an earlier kubeflow-stacks to this version's layout, without
touching what it deployed.

The one change of layout so far: the RBAC objects, once a Kubernetes-provider resource each, are
one resource now (infra/object_set.py). Left as they are, the first `pulumi up` would create that
resource (adopting the objects) and then delete the old resources, and with them the roles on the
cluster. So the move is:

1. Read the state, and find the old resources: RBAC objects that are children of the Kubeflow
   component. None: nothing to do.
2. Remove, on the cluster, the one mark the old layout left on each of those objects (the
   `pulumi.com/patchFieldManager` annotation), by which the new resource's create recognises
   objects of a stack not yet moved and refuses to go on. Objects, their rules and their
   bindings stay as they are.
3. Write the state back without the old resources (and without references to them from other
   resources' dependencies), so that the next `pulumi up` forgets them instead of deleting them.

If step 2 fails, nothing in the state changed and the next `pulumi up` still refuses; if step 3
fails, running the move again repeats both steps (they are idempotent).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from infra.apply import DEPLOYMENT_TYPE
from infra.bench.timeline import urn_type_and_name
from infra.conformance.objects import ObjectRef
from infra.object_set import LEGACY_ANNOTATION, RBAC_GROUP, RBAC_KINDS, object_path
from infra.server_apply import ApplyClient

LEGACY_TYPES = frozenset(f"kubernetes:{RBAC_GROUP}/v1:{kind}" for kind in RBAC_KINDS)


def legacy_rbac(resources: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The state's resources that this version applies as part of an object set: RBAC objects
    that are children of the Kubeflow component (a user's own roles elsewhere are not)."""
    return [res for res in resources if res.get("type") in LEGACY_TYPES
            and urn_type_and_name(str(res.get("parent", "")))[0] == DEPLOYMENT_TYPE]


def legacy_refs(resources: Iterable[Mapping[str, Any]]) -> list[ObjectRef]:
    refs = []
    for res in resources:
        meta = (res.get("outputs") or {}).get("metadata") or (res.get("inputs") or {}).get("metadata") or {}
        _, api, kind = str(res["type"]).split(":", 2)
        refs.append(ObjectRef(api, kind, meta["name"], meta.get("namespace") or None))
    return refs


def without(deployment: Mapping[str, Any], urns: set[str]) -> dict[str, Any]:
    """A copy of a state's deployment without the resources `urns` and every reference to them
    (dependencies, property dependencies, deleted-with, pending operations)."""
    edited = copy.deepcopy(dict(deployment))
    kept = []
    for res in edited.get("resources") or []:
        if res.get("urn") in urns:
            continue
        if res.get("dependencies"):
            res["dependencies"] = [u for u in res["dependencies"] if u not in urns]
        for prop, deps in list((res.get("propertyDependencies") or {}).items()):
            res["propertyDependencies"][prop] = [u for u in deps if u not in urns]
        if res.get("deletedWith") in urns:
            del res["deletedWith"]
        kept.append(res)
    edited["resources"] = kept
    if edited.get("pending_operations"):
        edited["pending_operations"] = [op for op in edited["pending_operations"]
                                        if (op.get("resource") or {}).get("urn") not in urns]
    return edited


def path_of(ref: ObjectRef) -> str:
    meta = {"name": ref.name, **({"namespace": ref.namespace} if ref.namespace else {})}
    return object_path({"apiVersion": ref.api_version, "kind": ref.kind, "metadata": meta})


def unmark(client: ApplyClient, refs: Sequence[ObjectRef]) -> None:
    """Remove the old layout's annotation from each object (gone ones are skipped)."""
    for ref in refs:
        client.merge_patch_at(path_of(ref), {"metadata": {"annotations": {LEGACY_ANNOTATION: None}}})


def migrate(stack: Any, kubeconfig: Callable[[], str], say: Callable[[str], None]) -> int:
    """Move one stack (an Automation API `Stack`); returns how many resources left its state.
    `kubeconfig` is asked only when there is something to move."""
    from pulumi import automation as auto

    exported = stack.export_stack()
    deployment = dict(exported.deployment or {})
    old = legacy_rbac(deployment.get("resources") or [])
    if not old:
        say(f"stack {stack.name}: nothing to move (no RBAC object is a resource of its own)")
        return 0
    refs = legacy_refs(old)
    say(f"stack {stack.name}: {len(old)} RBAC objects are resources of their own; "
        "removing the old layout's annotation from them on the cluster ...")
    unmark(ApplyClient(kubeconfig(), None), refs)
    say(f"stack {stack.name}: writing the state without those {len(old)} resources (the cluster keeps them) ...")
    stack.import_stack(auto.Deployment(version=exported.version,
                                       deployment=without(deployment, {str(r["urn"]) for r in old})))
    say(f"stack {stack.name}: moved; the next `pulumi up` adopts them, as they are, as one resource")
    return len(old)
