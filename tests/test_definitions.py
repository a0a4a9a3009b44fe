"""The CRD resource's provider against a real API server (KWOK): create, no-op diff, update with a
changed and a removed definition, refresh after a deletion behind Pulumi's back, adoption of
definitions that already exist, delete; the served-group resource that awaits an API group; and,
with the real Pulumi engine, groups that wait beside the dynamic resources that let them finish.
The full release goes through them in tests/test_sim_stack.py."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes import config as kube_config

from infra.automation import inline_stack
from infra.definitions import (
    CustomResourceDefinitions,
    DefinitionsProvider,
    ServedGroup,
    ServedGroupProvider,
    definition_bodies,
    packed_definitions,
    served_group_props,
)
from infra.server_apply import FIELD_MANAGER, unreachable

pytestmark = [pytest.mark.sim, pytest.mark.slow]

GROUP = "defs.kubeflow-stacks.test"


def crd(plural: str, kind: str, *, extra_field: str | None = None, group: str = GROUP) -> dict[str, Any]:
    spec_props: dict[str, Any] = {"size": {"type": "integer"}}
    if extra_field:
        spec_props[extra_field] = {"type": "string"}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": plural, "singular": plural[:-1], "kind": kind, "listKind": f"{kind}List"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "properties": {"spec": {"type": "object", "properties": spec_props}}}}}]},
    }


def props(kubeconfig: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {"definitions": packed_definitions(objects), "kubeconfig": kubeconfig, "context": None}


def live(api: client.ApiClient) -> dict[str, Any]:
    items = client.ApiextensionsV1Api(api).list_custom_resource_definition().items
    return {c.metadata.name: c for c in items if c.spec.group.endswith(GROUP)}


def served_props(kubeconfig: str, objects: list[dict[str, Any]], timeout: float = 60) -> dict[str, Any]:
    """What a ServedGroup of these definitions registers, resolved."""
    return {**served_group_props(objects, timeout), "kubeconfig": kubeconfig, "context": None}


def spec_fields(definition: Any) -> set[str]:
    return set(definition.spec.versions[0].schema.open_apiv3_schema.properties["spec"].properties)


def test_definitions_lifecycle(sim_kubeconfig: Path) -> None:
    kubeconfig = sim_kubeconfig.read_text()
    api = kube_config.new_client_from_config(str(sim_kubeconfig))
    provider = DefinitionsProvider()
    widgets, gadgets = crd("widgets", "Widget"), crd("gadgets", "Gadget")

    created = provider.create(props(kubeconfig, [widgets, gadgets]))
    # The create applies; the group's own resource awaits the kinds served.
    served = ServedGroupProvider().create(served_props(kubeconfig, [widgets, gadgets]))
    assert served.id == f"served-{GROUP}"
    found = live(api)
    assert set(found) == {f"widgets.{GROUP}", f"gadgets.{GROUP}"}
    for definition in found.values():
        assert any(c.type == "Established" and c.status == "True" for c in definition.status.conditions)
        assert FIELD_MANAGER in {m.manager for m in definition.metadata.managed_fields}
    # A custom resource of the new kind is accepted at once.
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, "v1", "default", "widgets", {"apiVersion": f"{GROUP}/v1", "kind": "Widget",
                                            "metadata": {"name": "w1"}, "spec": {"size": 3}})
    outs = created.outs
    assert outs is not None
    assert "definitions" not in outs  # digests only: the bodies stay in the inputs
    assert not provider.diff(created.id, outs, props(kubeconfig, [gadgets, widgets])).changes

    changed = crd("widgets", "Widget", extra_field="colour")
    news = props(kubeconfig, [changed])
    assert provider.diff(created.id, outs, news).changes
    outs = provider.update(created.id, outs, news).outs
    assert outs is not None
    found = live(api)
    assert set(found) == {f"widgets.{GROUP}"}  # gadgets removed, widgets changed
    assert spec_fields(found[f"widgets.{GROUP}"]) == {"size", "colour"}
    assert not provider.diff(created.id, outs, news).changes

    # Deleted behind Pulumi's back: refresh drops it, the next diff restores it.
    client.ApiextensionsV1Api(api).delete_custom_resource_definition(f"widgets.{GROUP}")
    from infra.definitions import DefinitionsClient

    DefinitionsClient(kubeconfig, None).wait_gone([f"widgets.{GROUP}"])
    refreshed = provider.read(created.id, {**outs}).outs
    assert refreshed is not None
    assert refreshed["digests"] == {}
    assert provider.diff(created.id, refreshed, news).changes
    outs = provider.update(created.id, refreshed, news).outs
    assert outs is not None
    assert set(live(api)) == {f"widgets.{GROUP}"}

    # A create over definitions that already exist (an interrupted update) adopts them.
    again = provider.create(copy.deepcopy(news))
    assert again.outs is not None and again.outs["digests"] == outs["digests"]

    provider.delete(created.id, outs)
    assert live(api) == {}


def test_a_served_group_waits_for_its_kinds_and_tells_what_is_missing(sim_kubeconfig: Path) -> None:
    """It waits until the kinds are in discovery (applied meanwhile, it returns), diffs on what it
    waits for only, and names the kinds that never came when it times out."""
    import threading

    from infra.definitions import DefinitionsClient
    from smoke_tests.wait import WaitTimeout

    kubeconfig = sim_kubeconfig.read_text()
    group = f"late.{GROUP}"
    late = crd("latecomers", "Latecomer", group=group)
    provider = ServedGroupProvider()
    defs = DefinitionsClient(kubeconfig, None)
    applier = threading.Timer(2.0, defs.apply_all, [list(definition_bodies([late]).values())])
    applier.start()
    try:
        provider.create(served_props(kubeconfig, [late]))
        assert f"latecomers.{group}" in live(kube_config.new_client_from_config(str(sim_kubeconfig)))
        olds = served_props(kubeconfig, [late])
        assert not provider.diff("served", olds, {**olds, "timeout": 5, "kubeconfig": "other"}).changes
        more = served_props(kubeconfig, [late, crd("stragglers", "Straggler", group=group)], timeout=2)
        assert provider.diff("served", olds, more).changes
        with pytest.raises(WaitTimeout, match=f"stragglers.{group}/v1"):
            provider.update("served", olds, more)
    finally:
        applier.join()
        defs.delete(f"latecomers.{group}")
        defs.wait_gone([f"latecomers.{group}"])


def test_groups_that_wait_do_not_hold_up_the_resource_they_wait_for(sim_kubeconfig: Path, tmp_path: Path) -> None:
    """Six served groups wait for kinds that a CRD resource, registered after them, applies. Pulumi's
    dynamic provider serves 4 calls at once, and the engine registers nothing while its check of a
    resource waits: without infra/server_apply.py `serve_more_calls_at_once` the CRD resource's
    check would queue behind 4 waiting groups until they gave up, and the update would fail."""
    import pulumi
    import pulumi_kubernetes as k8s

    kubeconfig = sim_kubeconfig.read_text()
    defs = [crd("parts", "Part", group=f"g{i}.{GROUP}") for i in range(6)]

    def program() -> None:
        for i, definition in enumerate(defs):
            ServedGroup(f"served-{i}", [definition], kubeconfig, None, timeout=90)
        # Registered once the groups above already wait: the Kubernetes provider's start takes a moment.
        provider = k8s.Provider("k8s", kubeconfig=kubeconfig)
        later = k8s.core.v1.ConfigMap("later", metadata={"name": "kfstack-defs-later", "namespace": "default"},
                                      opts=pulumi.ResourceOptions(provider=provider))
        CustomResourceDefinitions("defs", defs, kubeconfig, None, pulumi.ResourceOptions(depends_on=[later]))

    ts = inline_stack(tmp_path, program, prefix="served")
    try:
        result = ts.stack.up()
        assert result.summary.result == "succeeded"
        assert dict(result.summary.resource_changes or {}) == {"create": 10}  # stack, provider, map, CRDs, 6 groups
        assert set(live(kube_config.new_client_from_config(str(sim_kubeconfig)))) >= \
            {f"parts.g{i}.{GROUP}" for i in range(6)}
        again = ts.stack.up()  # a second up changes nothing
        assert set(again.summary.resource_changes or {}) == {"same"}, again.summary.resource_changes
    finally:
        ts.stack.destroy()
        ts.stack.workspace.remove_stack(ts.name)
    assert not any(name.startswith("parts.g") for name in live(kube_config.new_client_from_config(str(sim_kubeconfig))))


def test_the_schema_is_read_after_the_definitions_are_established(sim_kubeconfig: Path) -> None:
    """The warm-up reads the OpenAPI document with the new kinds in it (so the server rebuilt it),
    stops once it no longer changes, and only ends when the cluster is out of reach."""
    from infra.definitions import DefinitionsClient

    kubeconfig = sim_kubeconfig.read_text()
    client_ = DefinitionsClient(kubeconfig, None)
    client_.warm_schema().join(60)
    before = client_.schema_bytes
    assert before
    # A document that has settled is read once; after that the server only answers "not modified".
    steady = DefinitionsClient(kubeconfig, None)
    warm = steady.warm_schema()
    warm.join(60)
    assert not warm.is_alive() and steady.schema_reads == 1
    names = [f"sprockets.{GROUP}"]
    bodies = definition_bodies([crd("sprockets", "Sprocket")])
    client_.apply_all(list(bodies.values()))
    try:
        client_.wait_established(bodies)
        client_.warm_schema().join(60)
        assert client_.schema_bytes and client_.schema_bytes > before
    finally:
        client_.delete(names[0])
        client_.wait_gone(names)

    out_of_reach = DefinitionsClient(GONE, None)
    warm = out_of_reach.warm_schema()
    warm.join(60)
    assert not warm.is_alive() and out_of_reach.schema_bytes is None


GONE = ("apiVersion: v1\nkind: Config\ncurrent-context: gone\nclusters:\n- name: gone\n  cluster:\n"
        "    server: https://127.0.0.1:1\ncontexts:\n- name: gone\n  context: {cluster: gone, user: gone}\n"
        "users:\n- name: gone\n  user: {token: x}\n")


def test_delete_on_a_cluster_that_is_gone_is_not_an_error() -> None:
    props = {"digests": {f"widgets.{GROUP}": "0"}, "kubeconfig": GONE, "context": None}
    provider = DefinitionsProvider()
    # The cluster really is out of reach: a direct call fails with a connection error...
    with pytest.raises(Exception) as info:
        provider._client(props).delete(f"widgets.{GROUP}")
    assert unreachable(info.value), repr(info.value)
    # ...which delete counts as nothing left to delete, so `pulumi destroy` of a deleted cluster ends.
    provider.delete("customresourcedefinitions", props)  # returns normally


def test_an_api_error_on_delete_is_raised(sim_kubeconfig: Path) -> None:
    """Only an unreachable cluster means "nothing to delete"; a refusal must fail the destroy."""
    import yaml
    from kubernetes.client.exceptions import ApiException

    config = yaml.safe_load(sim_kubeconfig.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    forged = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "not-a-valid-token"}}]})
    with pytest.raises(ApiException) as info:
        DefinitionsProvider().delete("customresourcedefinitions", {
            "digests": {f"widgets.{GROUP}": "0"}, "kubeconfig": forged, "context": None})
    assert info.value.status == 401  # the API server does not know the token: authentication fails
