"""The RBAC object set (infra/object_set.py) without a cluster: what it keeps, the paths it
calls, the order it deletes in, and its provider's decisions against a scripted client. The same
provider against a real API server: tests/test_object_set_sim.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

import infra.object_set as object_set
from infra.dependencies import DependencyCycle, Graph
from infra.object_set import (
    LEGACY_ANNOTATION,
    LegacyObjects,
    ObjectSetProvider,
    bodies_of,
    deletion_order,
    member_records,
    member_stub,
    object_path,
    packed_members,
)

RBAC = "rbac.authorization.k8s.io/v1"


def obj(kind: str, name: str, namespace: str | None = None, **fields: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    meta.update(fields.pop("metadata", {}))
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta, **fields}


def aggregated(name: str, gathers: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """An aggregated ClusterRole gathering the roles labelled `gathers`="true"."""
    return obj("ClusterRole", name, metadata={"labels": labels or {}},
               aggregationRule={"clusterRoleSelectors": [{"matchLabels": {gathers: "true"}}]})


def test_members_are_keyed_and_applied_where_the_api_keeps_them() -> None:
    # kustomize sets a namespace on some cluster-scoped objects: the key and body drop it.
    stray = obj("ClusterRole", "reader", "kubeflow", rules=[])
    binding = obj("RoleBinding", "read", "team", roleRef={"kind": "ClusterRole", "name": "reader"})
    packed = packed_members([stray, binding])
    assert sorted(packed) == ["rbac.authorization.k8s.io/ClusterRole:reader",
                              "rbac.authorization.k8s.io/RoleBinding:team/read"]
    bodies = bodies_of({"objects": packed})
    assert "namespace" not in json.loads(bodies["rbac.authorization.k8s.io/ClusterRole:reader"])["metadata"]
    assert object_path(stray) == "/apis/rbac.authorization.k8s.io/v1/clusterroles/reader"
    assert object_path(binding) == "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings/read"
    assert object_path({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "a", "namespace": "n"}}) == "/api/v1/namespaces/n/serviceaccounts/a"
    # A key and its record are enough to find the object again once its body is gone.
    for key, record in member_records(bodies).items():
        assert object_path(member_stub(key, record)) in {object_path(stray), object_path(binding)}


def test_deletes_go_bindings_first_and_aggregated_roles_after_what_they_gather() -> None:
    top = aggregated("top", "to-top")
    middle = aggregated("middle", "to-middle", labels={"to-top": "true"})
    leaf = obj("ClusterRole", "leaf", metadata={"labels": {"to-middle": "true"}}, rules=[])
    binding = obj("ClusterRoleBinding", "b", roleRef={"kind": "ClusterRole", "name": "top"})
    role = obj("Role", "r", "team", rules=[])
    order = [o["metadata"]["name"] for o in deletion_order([top, middle, leaf, role, binding])]
    assert order.index("b") < order.index("leaf") < order.index("middle") < order.index("top")
    assert order.index("b") < order.index("r")
    records = member_records(bodies_of({"objects": packed_members([top, middle, leaf, role, binding])}))
    def name(key: str) -> str:
        return str(member_stub(key, records[key])["metadata"]["name"])

    assert [name(k) for k in sorted(records, key=lambda k: records[k]["deleteRank"])] == order
    assert {name(k) for k, r in records.items() if r.get("aggregated")} == {"top", "middle"}


class ScriptedCluster:
    """Stands in for SetClient: records applies and deletes; `existing` answers `present`."""

    def __init__(self, existing: dict[str, dict[str, str]] | None = None) -> None:
        self.existing = existing or {}
        self.applied: list[str] = []
        self.deleted: list[str] = []

    def present(self, objects: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
        return {k: v for k, v in self.existing.items() if k in {packed_key(o) for o in objects}}

    def refuse_legacy(self, objects: list[dict[str, Any]]) -> None:
        object_set.SetClient.refuse_legacy(self, objects)  # type: ignore[arg-type]

    def apply_all(self, bodies: list[str]) -> None:
        self.applied += [json.loads(b)["metadata"]["name"] for b in bodies]

    def delete_all(self, members: dict[str, dict[str, Any]]) -> None:
        self.deleted += sorted(members)


def packed_key(o: dict[str, Any]) -> str:
    [key] = packed_members([o])
    return key


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> ScriptedCluster:
    scripted = ScriptedCluster()
    monkeypatch.setattr(ObjectSetProvider, "_client", lambda self, props: scripted)
    return scripted


def props(*objects: dict[str, Any]) -> dict[str, Any]:
    return {"objects": packed_members(list(objects)), "kubeconfig": "k", "context": None}


def test_a_create_applies_every_member_and_keeps_digests_not_bodies(cluster: ScriptedCluster) -> None:
    role, binding = obj("ClusterRole", "r", rules=[]), obj("ClusterRoleBinding", "b")
    created = ObjectSetProvider().create(props(role, binding))
    assert sorted(cluster.applied) == ["b", "r"]
    assert set((created.outs or {})["members"]) == {packed_key(role), packed_key(binding)}
    assert "rules" not in json.dumps(created.outs or {})


def test_a_create_refuses_objects_of_the_old_layout_before_applying_anything(cluster: ScriptedCluster) -> None:
    role = obj("ClusterRole", "r", rules=[])
    cluster.existing = {packed_key(role): {LEGACY_ANNOTATION: "kubeflow-stacks"}}
    with pytest.raises(LegacyObjects, match="kfstack migrate"):
        ObjectSetProvider().create(props(role))
    assert cluster.applied == []
    cluster.existing = {packed_key(role): {"other": "annotation"}}  # adopted as it is
    ObjectSetProvider().create(props(role))
    assert cluster.applied == ["r"]


def test_updates_apply_what_changed_and_delete_what_left(cluster: ScriptedCluster) -> None:
    kept, changed, removed = (obj("ClusterRole", n, rules=[]) for n in ("kept", "changed", "removed"))
    provider = ObjectSetProvider()
    olds = {**props(kept, changed, removed), **(provider.create(props(kept, changed, removed)).outs or {})}
    cluster.applied.clear()
    assert not provider.diff("rbac", olds, props(kept, changed, removed)).changes
    changed_now = {**changed, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
    news = props(kept, changed_now)
    assert provider.diff("rbac", olds, news).changes
    updated = provider.update("rbac", olds, news)
    assert cluster.applied == ["changed"]
    assert cluster.deleted == [packed_key(removed)]
    assert set((updated.outs or {})["members"]) == {packed_key(kept), packed_key(changed)}


def test_collapsing_merges_needs_and_dependents_into_one_node() -> None:
    graph = Graph(objects={k: {"kind": k} for k in ("ns", "a", "b", "deploy", "other")}, crds=[],
                  needs={"ns": {}, "a": {"ns": "namespace"}, "b": {"a": "rbac"},
                         "deploy": {"b": "rbac", "ns": "namespace"}, "other": {}})
    merged = graph.collapse("set", ["a", "b"])
    assert merged.sets["set"] == [{"kind": "a"}, {"kind": "b"}]
    assert set(merged.objects) == {"ns", "deploy", "other"}
    assert merged.needs["set"] == {"ns": "namespace"}
    assert merged.needs["deploy"] == {"set": "rbac", "ns": "namespace"}
    assert merged.order().index("set") < merged.order().index("deploy")
    assert merged.edge_count() <= graph.edge_count()
    assert graph.collapse("set", []) is graph
    # A loop only the merge closes (a needs x, x needs b) cannot be ordered: it is named.
    looped = Graph(objects={k: {} for k in ("a", "x", "b")}, crds=[],
                   needs={"a": {"x": "pod"}, "x": {"b": "pod"}, "b": {}})
    with pytest.raises(DependencyCycle, match="set needs x"):
        looped.collapse("set", ["a", "b"]).order()
