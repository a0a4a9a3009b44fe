"""The RBAC object set against a real API server (KWOK, with the cluster's controllers): its
provider's lifecycle, and the move of a stack from the one-resource-per-object layout with the
real Pulumi engine and Kubernetes provider (`kfstack migrate`, infra/migrate.py). The whole
release goes through the set in tests/test_sim_stack.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from kubernetes import client
from kubernetes import config as kube_config
from pulumi import automation as auto

from infra.apply import DEPLOYMENT_TYPE, KubeObject, resource_name, with_field_manager
from infra.automation import inline_stack
from infra.migrate import legacy_rbac, migrate
from infra.object_set import LEGACY_ANNOTATION, ObjectSet, ObjectSetProvider, packed_members
from infra.server_apply import FIELD_MANAGER

pytestmark = [pytest.mark.sim, pytest.mark.slow]

RBAC = "rbac.authorization.k8s.io/v1"
PREFIX = "kfstack-set-"


def rbac(kind: str, name: str, **fields: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": PREFIX + name, **fields.pop("metadata", {})}
    if kind in ("Role", "RoleBinding"):
        meta["namespace"] = "default"
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta, **fields}


def role(name: str, verbs: list[str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return rbac("ClusterRole", name, metadata={"labels": labels or {}},
                rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": verbs}])


def binding(name: str, role_name: str) -> dict[str, Any]:
    return rbac("RoleBinding", name, roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                              "name": PREFIX + role_name},
                subjects=[{"kind": "ServiceAccount", "name": "default", "namespace": "default"}])


GATHERER = rbac("ClusterRole", "gatherer",
                aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"kfstack-set-test/gather": "true"}}]})


def live_names(api: client.ApiClient) -> dict[str, Any]:
    """Name -> object of every RBAC object of this module on the cluster."""
    rbac_api = client.RbacAuthorizationV1Api(api)
    items = [*rbac_api.list_cluster_role().items, *rbac_api.list_cluster_role_binding().items,
             *rbac_api.list_namespaced_role("default").items, *rbac_api.list_namespaced_role_binding("default").items]
    return {i.metadata.name: i for i in items if i.metadata.name.startswith(PREFIX)}


def props(kubeconfig: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {"objects": packed_members(objects), "kubeconfig": kubeconfig, "context": None}


def test_object_set_lifecycle(sim_kubeconfig: Path) -> None:
    kubeconfig = sim_kubeconfig.read_text()
    api = kube_config.new_client_from_config(str(sim_kubeconfig))
    rbac_api = client.RbacAuthorizationV1Api(api)
    provider = ObjectSetProvider()
    gathered = role("gathered", ["get"], labels={"kfstack-set-test/gather": "true"})
    reader, bound = role("reader", ["get"]), binding("read", "reader")
    local = rbac("Role", "local", rules=[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}])
    # One of them is there already (as after an interrupted update): the create adopts it.
    rbac_api.create_cluster_role(client.V1ClusterRole(metadata=client.V1ObjectMeta(name=PREFIX + "reader")))
    everything = [GATHERER, gathered, reader, bound, local]
    try:
        created = provider.create(props(kubeconfig, everything))
        found = live_names(api)
        assert set(found) == {o["metadata"]["name"] for o in everything}
        assert all(FIELD_MANAGER in {m.manager for m in o.metadata.managed_fields} for o in found.values())
        assert found[PREFIX + "reader"].rules[0].verbs == ["get"]
        olds = {**props(kubeconfig, everything), **(created.outs or {})}
        assert not provider.diff("rbac", olds, props(kubeconfig, everything)).changes

        # An update: the reader gains a verb; the binding and the aggregation (gatherer and
        # gathered) leave the render, and the gatherer must stay gone.
        reader_now = role("reader", ["get", "list"])
        news = props(kubeconfig, [reader_now, local])
        assert provider.diff("rbac", olds, news).changes
        updated = provider.update("rbac", olds, news)
        time.sleep(2)  # time for the aggregation controller to re-create a gatherer deleted too early
        found = live_names(api)
        assert set(found) == {PREFIX + "reader", PREFIX + "local"}
        assert found[PREFIX + "reader"].rules[0].verbs == ["get", "list"]

        # Refresh after a deletion behind Pulumi's back: the member drops out of the outputs.
        rbac_api.delete_namespaced_role(PREFIX + "local", "default")
        read = provider.read("rbac", {**news, **(updated.outs or {})})
        assert list((read.outs or {})["members"]) == [f"rbac.authorization.k8s.io/ClusterRole:{PREFIX}reader"]

        provider.delete("rbac", {**news, **(updated.outs or {})})
        assert live_names(api) == {}
    finally:
        remove_all(api)


def remove_all(api: client.ApiClient) -> None:
    """Whatever a failed test left of this module's objects."""
    rbac_api = client.RbacAuthorizationV1Api(api)
    for name in live_names(api):
        for delete in (rbac_api.delete_cluster_role, rbac_api.delete_cluster_role_binding,
                       lambda n: rbac_api.delete_namespaced_role(n, "default"),
                       lambda n: rbac_api.delete_namespaced_role_binding(n, "default")):
            try:
                delete(name)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise


class Deployment(pulumi.ComponentResource):
    """The Kubeflow component's type, as infra/apply.py registers it (the migration looks for it)."""

    def __init__(self, name: str) -> None:
        super().__init__(DEPLOYMENT_TYPE, name, None, None)


def old_layout(kubeconfig: str, objects: list[dict[str, Any]]) -> Any:
    """The program as earlier versions registered RBAC: one Kubernetes-provider resource per object,
    and a ConfigMap that depends on the binding (its state names it)."""
    def program() -> None:
        provider = k8s.Provider("sim", kubeconfig=pulumi.Output.secret(kubeconfig))
        parent = Deployment("kubeflow")
        opts = pulumi.ResourceOptions(parent=parent, provider=provider)
        made = [KubeObject(resource_name(o), with_field_manager(o), opts) for o in objects]
        KubeObject("default/kfstack-set-config", with_field_manager(CONFIG),
                   pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=made)))
        pulumi.export("kubeconfig", pulumi.Output.secret(kubeconfig))
    return program


def new_layout(kubeconfig: str, objects: list[dict[str, Any]]) -> Any:
    def program() -> None:
        provider = k8s.Provider("sim", kubeconfig=pulumi.Output.secret(kubeconfig))
        parent = Deployment("kubeflow")
        rbac_set = ObjectSet("kubeflow-rbac", objects, kubeconfig, None, pulumi.ResourceOptions(parent=parent))
        KubeObject("default/kfstack-set-config", with_field_manager(CONFIG),
                   pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=[rbac_set]))
        pulumi.export("kubeconfig", pulumi.Output.secret(kubeconfig))
    return program


CONFIG = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kfstack-set-config", "namespace": "default"},
          "data": {"a": "b"}}


def uids(api: client.ApiClient) -> dict[str, str]:
    return {name: obj.metadata.uid for name, obj in live_names(api).items()}


def test_a_stack_of_the_old_layout_is_refused_then_moved_without_touching_the_cluster(
        sim_kubeconfig: Path, tmp_path: Path) -> None:
    kubeconfig = sim_kubeconfig.read_text()
    api = kube_config.new_client_from_config(str(sim_kubeconfig))
    objects = [role("migrated", ["get"]), binding("migrated-binding", "migrated"), GATHERER,
               role("gathered-too", ["list"], labels={"kfstack-set-test/gather": "true"})]
    ts = inline_stack(tmp_path, old_layout(kubeconfig, objects), prefix="move")
    lines: list[str] = []
    try:
        assert ts.stack.up().summary.result == "succeeded"
        before = uids(api)
        assert len(before) == 4
        assert all(LEGACY_ANNOTATION in (o.metadata.annotations or {}) for o in live_names(api).values())

        # This version's program on the old state: refused, naming the way out; nothing deleted.
        with pytest.raises(auto.CommandError) as refused:
            ts.stack.up(program=new_layout(kubeconfig, objects))
        assert "kfstack migrate" in str(refused.value)
        assert uids(api) == before
        state = ts.stack.export_stack().deployment or {}
        assert len(legacy_rbac(state["resources"])) == 4

        # The move: the state forgets them, the cluster keeps them (annotation gone).
        assert migrate(ts.stack, lambda: kubeconfig, lines.append) == 4
        state = ts.stack.export_stack().deployment or {}
        assert legacy_rbac(state["resources"]) == []
        assert uids(api) == before
        assert not any(LEGACY_ANNOTATION in (o.metadata.annotations or {}) for o in live_names(api).values())

        # Then the new layout adopts them as they are: same objects, and a second up changes nothing.
        ts.stack.workspace.program = new_layout(kubeconfig, objects)
        assert ts.stack.up().summary.result == "succeeded"
        assert uids(api) == before
        again = ts.stack.up()
        assert set(again.summary.resource_changes or {}) == {"same"}, again.summary.resource_changes
        assert migrate(ts.stack, lambda: kubeconfig, lines.append) == 0
        assert "nothing to move" in lines[-1]
    finally:
        ts.stack.destroy()
        ts.stack.workspace.remove_stack(ts.name)
        left = live_names(api)
        remove_all(api)
    assert left == {}
