"""A release's roles and role bindings as one resource: server-side applied together.

Every Pulumi resource costs the program, the engine and the Kubernetes provider work on every
`pulumi up`, a no-op too: the program serializes its inputs and reads back its outputs, the engine
diffs it, the provider checks it. Kubeflow v1.11.0 has 214 RBAC objects, over a third of its
resources, and nothing about them is awaited: the API server stores them, they have no status, and
what needs them is a workload, which can as well wait for all of them. Applied here, a no-op
`pulumi up` of the full release took 4.3 to 4.6 s on the sim cluster, against 5.3 to 6.1 s before
(docs/benchmarks.md).

What is kept, as for the CRDs (infra/definitions.py): a preview names the objects that change (their
packed bodies, by object key, are the inputs; the outputs keep digests); a create adopts objects
that are already there; an update applies what changed and deletes what left the render; a refresh
drops objects deleted behind Pulumi's back, so the next update restores them; `pulumi destroy`
deletes them after everything that needs them, and an unreachable cluster means there is nothing
left to delete.

A stack that an earlier version applied one resource per object must be moved first
(`kfstack migrate`, infra/migrate.py): otherwise the update that creates this resource would end by
deleting the old resources, and with them the cluster's roles. A create that finds such objects
refuses, before it changes anything (`LegacyObjects`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from infra.dependencies import CLUSTER_SCOPED_KINDS, aggregating_roles, is_aggregated_role, plural_of
from infra.manifests.objects import Obj, group_of, object_key
from infra.server_apply import FIELD_MANAGER_ANNOTATION, ApplyClient, ClusterResource, digest, pack, unpack, unreachable

RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_KINDS = ("ClusterRoleBinding", "RoleBinding", "ClusterRole", "Role")  # the order deletes go in
RBAC_SET = "rbac-objects"  # its node in the apply's graph (infra/apply.py)
SET_ID = "rbac"
# What marks an object of the one-resource-per-object layout on the cluster: the set applies its
# members without it (and so removes it from what it adopts).
LEGACY_ANNOTATION = FIELD_MANAGER_ANNOTATION
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
REAPPEAR_CHECKS = 3
REAPPEAR_INTERVAL_S = 0.5
APPLY_THREADS = 8


def in_rbac_set(obj: Obj) -> bool:
    return group_of(obj) == RBAC_GROUP and obj["kind"] in RBAC_KINDS


def member(obj: Obj) -> Obj:
    """An object as the set applies it: without the namespace kustomize sets on some cluster-scoped
    objects (the API path, not the body, says where an object lives; keys must match the cluster's)."""
    if obj["kind"] in CLUSTER_SCOPED_KINDS and "namespace" in obj["metadata"]:
        return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "namespace"}}
    return obj


def packed_members(objects: Sequence[Obj]) -> dict[str, str]:
    """Object key -> packed canonical JSON: the resource's `objects` input."""
    return {object_key(member(o)): pack(json.dumps(member(o), sort_keys=True, separators=(",", ":")))
            for o in objects}


def collection_path(api_version: str, kind: str, namespace: str = "") -> str:
    group = api_version.split("/")[0] if "/" in api_version else ""
    base = f"/apis/{api_version}" if group else f"/api/{api_version}"
    where = f"/namespaces/{namespace}" if namespace else ""
    return f"{base}{where}/{plural_of(kind, {}, group)}"


def object_path(obj: Obj) -> str:
    namespace = "" if obj["kind"] in CLUSTER_SCOPED_KINDS else obj["metadata"].get("namespace", "")
    return f"{collection_path(obj['apiVersion'], obj['kind'], namespace)}/{obj['metadata']['name']}"


def deletion_order(objects: Sequence[Obj]) -> list[Obj]:
    """Bindings, then roles, then the aggregated ClusterRoles, each after the roles it gathers.

    An aggregated role deleted while a role it gathers still exists is re-created at once by the
    aggregation controller's apply (the upgrade test on a real API server found this)."""
    rank = {kind: i for i, kind in enumerate(RBAC_KINDS)}
    plain = sorted((o for o in objects if not is_aggregated_role(o)), key=lambda o: rank.get(o["kind"], 0))
    left = {o["metadata"]["name"]: o for o in objects if is_aggregated_role(o)}
    ordered: list[Obj] = []
    while left:
        # Free now: the aggregated roles that gather none of those still left.
        gatherers = {g for role in left.values() for g in aggregating_roles(role, left)}
        free = sorted(name for name in left if name not in gatherers) or sorted(left)
        ordered += [left.pop(name) for name in free]
    return [*plain, *ordered]


class LegacyObjects(RuntimeError):
    """Objects the set would adopt were applied as resources of their own by an earlier version."""


class SetClient(ApplyClient):
    threads = APPLY_THREADS

    def apply_all(self, bodies: Sequence[str]) -> None:
        self.apply_many([(object_path(obj), obj) for obj in map(json.loads, bodies)])

    def present(self, objects: Sequence[Obj]) -> dict[str, dict[str, str]]:
        """Object key -> annotations, for the objects that exist (one metadata-only list per kind)."""
        wanted = {object_key(o) for o in objects}
        found: dict[str, dict[str, str]] = {}
        for api_version, kind in sorted({(o["apiVersion"], o["kind"]) for o in objects}):
            listing = self._call("GET", collection_path(api_version, kind), header_params={"Accept": METADATA_LIST})
            for item in listing.get("items") or []:
                meta = item.get("metadata") or {}
                key = object_key(member({"apiVersion": api_version, "kind": kind, "metadata": meta}))
                if key in wanted:
                    found[key] = meta.get("annotations") or {}
        return found

    def refuse_legacy(self, objects: Sequence[Obj]) -> None:
        legacy = sorted(key for key, annotations in self.present(objects).items() if LEGACY_ANNOTATION in annotations)
        if legacy:
            raise LegacyObjects(
                f"{len(legacy)} RBAC objects of this release (first: {legacy[0]}) are resources of their own in "
                "this stack, as an earlier kubeflow-stacks applied them; this version applies them as one "
                "resource, and the update would end by deleting the old ones from the cluster. Nothing was "
                "changed. Run `kfstack migrate --stack <stack>` once, then `pulumi up` again. (Should it find "
                "nothing to move, the objects belong to another stack on this cluster: move or destroy that one.)")

    def delete_all(self, members: Mapping[str, Mapping[str, Any]]) -> None:
        """Delete members (key -> state record) in their recorded order; aggregated ClusterRoles
        are checked until they stay gone."""
        ordered = [member_stub(key, record) for key, record in
                   sorted(members.items(), key=lambda item: (item[1].get("deleteRank", 0), item[0]))]
        for obj in ordered:
            self.delete_at(object_path(obj))
        aggregated = [member_stub(key, record) for key, record in members.items() if record.get("aggregated")]
        for _ in range(REAPPEAR_CHECKS if aggregated else 0):
            time.sleep(REAPPEAR_INTERVAL_S)
            back = self.present(aggregated)
            for obj in aggregated:
                if object_key(obj) in back:
                    self.delete_at(object_path(obj))


def bodies_of(props: Mapping[str, Any]) -> dict[str, str]:
    """Object key -> JSON body, from the resource's `objects` input."""
    return {key: unpack(value) for key, value in props["objects"].items()}


def member_records(bodies: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """What the state keeps of each member: enough to diff it, to find it on the cluster, and to
    delete it in `deletion_order` once its body is gone from the inputs."""
    objects = {key: json.loads(body) for key, body in bodies.items()}
    rank = {object_key(obj): i for i, obj in enumerate(deletion_order(list(objects.values())))}
    return {key: {"apiVersion": obj["apiVersion"], "digest": digest(bodies[key]), "deleteRank": rank[key],
                  **({"aggregated": True} if is_aggregated_role(obj) else {})}
            for key, obj in objects.items()}


def digests_of(members: Mapping[str, Any] | None) -> dict[str, str]:
    return {key: record["digest"] for key, record in (members or {}).items()}


class ObjectSetProvider(ResourceProvider):
    """Outputs keep each member's apiVersion and digest (not its body)."""

    def _client(self, props: Mapping[str, Any]) -> SetClient:
        return SetClient(props["kubeconfig"], props.get("context"))

    @staticmethod
    def _outs(props: Mapping[str, Any], bodies: Mapping[str, str]) -> dict[str, Any]:
        return {"members": member_records(bodies),
                "kubeconfig": props["kubeconfig"], "context": props.get("context")}

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = self._client(props)
        bodies = bodies_of(props)
        client.refuse_legacy([json.loads(b) for b in bodies.values()])
        client.apply_all(list(bodies.values()))
        return CreateResult(SET_ID, self._outs(props, bodies))

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        news_digests = {key: digest(body) for key, body in bodies_of(news).items()}
        return DiffResult(changes=news_digests != digests_of(olds.get("members")), replaces=[])

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = self._client(news)
        old = digests_of(olds.get("members"))
        bodies = bodies_of(news)
        client.apply_all([body for key, body in bodies.items() if old.get(key) != digest(body)])
        client.delete_all({key: record for key, record in (olds.get("members") or {}).items() if key not in bodies})
        return UpdateResult(self._outs(news, bodies))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Refresh: a member deleted behind Pulumi's back drops out, so the next update restores it."""
        members = props.get("members") or {}
        present = self._client(props).present([member_stub(k, r) for k, r in members.items()])
        return ReadResult(id_, {**props, "members": {k: r for k, r in members.items() if k in present}})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        members = props.get("members") or {}
        try:
            self._client(props).delete_all(members)
        except Exception as exc:
            if not unreachable(exc):
                raise


def member_stub(key: str, record: Mapping[str, str]) -> Obj:
    """A member as far as its key and apiVersion tell (enough to find and delete it)."""
    kind_part, _, where = key.partition(":")
    kind = kind_part.split("/", 1)[1]
    namespace, _, name = where.rpartition("/")
    return {"apiVersion": record["apiVersion"], "kind": kind,
            "metadata": {"name": name, **({"namespace": namespace} if namespace else {})}}


class ObjectSet(ClusterResource):
    """Objects of a render as one resource."""

    members: pulumi.Output[dict[str, dict[str, str]]]

    def __init__(self, name: str, objects: Sequence[Obj], kubeconfig: pulumi.Input[str], context: str | None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(ObjectSetProvider(), name, {"objects": packed_members(objects), "members": None},
                         kubeconfig, context, opts)
