"""T0: the Pulumi program under Pulumi's own mocks: what each cluster provider registers, how the
Kubeflow component is parented and ordered, and which outputs are secret."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime.sync_await import _sync_await

from infra.apply import apply_graph, node_resource_name, type_token
from infra.config import ConfigError, parse_stack_config
from infra.dependencies import CRDS, derive, served_node
from infra.manifests.objects import object_key
from infra.object_set import in_rbac_set, packed_members
from tests.helpers import base_raw


class RecordingMocks(pulumi.runtime.Mocks):
    """Answers every registration with its own inputs, and records what was registered."""

    def __init__(self) -> None:
        self.registered: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.registered.append(args)
        outputs = dict(args.inputs)
        if args.typ in ("pulumi-python:dynamic:Resource", "eks:index:Cluster"):
            outputs["kubeconfig"] = "apiVersion: v1\nkind: Config\n"
        if args.typ == "gcp:container/cluster:Cluster":
            outputs.update(endpoint="203.0.113.10", masterAuth={"clusterCaCertificate": "Q0E="})
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "azure-native:containerservice:listManagedClusterUserCredentials":
            return {"kubeconfigs": [{"name": "clusterUser", "value": "YXBpVmVyc2lvbjogdjEK"}]}, []
        return {}, []  # no check failures (pulumi iterates this list)

    def types(self) -> list[str]:
        return [r.typ for r in self.registered]

    def clusters(self) -> list[pulumi.runtime.MockResourceArgs]:
        """Dynamic resources that are cluster lifecycles (the others are admission gates, the CRDs,
        their served groups and the RBAC set)."""
        return [r for r in self.registered if r.typ == "pulumi-python:dynamic:Resource"
                and not {"server", "definitions", "group", "objects"} & set(r.inputs)]  # gates have objects too


def _resolve(output: pulumi.Output) -> Any:
    return _sync_await(output.future())


def _is_secret(output: pulumi.Output) -> bool:
    return _sync_await(output.is_secret())


def in_pulumi(fn: Callable[[], Any]) -> Any:
    """Run `fn` as a Pulumi program under the mocks and wait for every registration to finish."""
    box: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> None:
        box["result"] = fn()

    program()
    return box["result"]


@pytest.fixture
def mocks() -> RecordingMocks:
    m = RecordingMocks()
    pulumi.runtime.set_mocks(m, project="kubeflow-stacks", stack="test", preview=False)
    return m


def _build(provider_raw: dict[str, Any], manifests_tree: Path, components: str = "core", storage: str = "static"):
    from infra.program import build_stack

    raw = base_raw(cluster=provider_raw, kubeflow={"components": components},
                   storage={"mode": storage, "defaultClass": "kf"})
    return build_stack(parse_stack_config("test", raw, {"auth"}), manifests_tree)


def _built_and_secret(stack: Any) -> tuple[Any, bool]:
    return stack, _is_secret(stack.cluster.kubeconfig)


@pytest.mark.parametrize(("cluster", "expected_dynamic"), [
    ({"provider": "kind", "name": "k"}, 1),
    ({"provider": "sim", "name": "s"}, 1),
    ({"provider": "minikube", "name": "m"}, 1),
])
def test_local_cluster_providers_register_a_lifecycle_and_a_provider(mocks, manifests_tree, cluster,
                                                                     expected_dynamic):
    stack, secret = in_pulumi(lambda: _built_and_secret(_build(cluster, manifests_tree)))
    assert len(mocks.clusters()) == expected_dynamic
    # The stack owns this cluster: destroy deletes it, and every object with it.
    assert stack.cluster.deleted_with is stack.cluster.cluster
    assert mocks.types().count("pulumi:providers:kubernetes") == 1
    assert secret
    [dyn] = mocks.clusters()
    assert dyn.inputs["name"] == cluster["name"]
    assert "kubeconfig" not in dyn.inputs or dyn.inputs["kubeconfig"] is None


@pytest.mark.parametrize(("cluster", "expected"), [
    ({"provider": "eks", "name": "e", "eks": {"region": "eu-west-1", "nodes": 3}},
     {"eks:index:Cluster": 1, "aws:eks/addon:Addon": 1, "pulumi:providers:aws": 1}),
    ({"provider": "gke", "name": "g", "gke": {"region": "europe-west1", "project": "p"}},
     {"gcp:container/cluster:Cluster": 1, "gcp:container/nodePool:NodePool": 1, "pulumi:providers:gcp": 1}),
    ({"provider": "aks", "name": "a", "aks": {"region": "westeurope"}},
     {"azure-native:resources:ResourceGroup": 1, "azure-native:containerservice:ManagedCluster": 1}),
])
def test_managed_clusters_register_the_cloud_resources(mocks, manifests_tree, cluster, expected):
    stack, secret = in_pulumi(lambda: _built_and_secret(_build(cluster, manifests_tree, storage="existing")))
    # The component's type is in every child's URN: it must stay what it was, or an update replaces all.
    cloud = {"eks": "EksCluster", "gke": "GkeCluster", "aks": "AksCluster"}[cluster["provider"]]
    assert in_pulumi(lambda: _resolve(stack.cluster.urn)).split("::")[2].endswith(f"$kubeflow-stacks:clusters:{cloud}")
    # Deleting a cloud cluster would orphan the load balancers and disks its controllers made.
    assert stack.cluster.deleted_with is None
    types = mocks.types()
    assert {t: types.count(t) for t in expected} == expected
    assert types.count("pulumi:providers:kubernetes") == 1
    [sc] = [r for r in mocks.registered if r.typ == "kubernetes:storage.k8s.io/v1:StorageClass"]
    assert sc.inputs["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
    assert secret
    if cluster["provider"] == "eks":
        [eks] = [r for r in mocks.registered if r.typ == "eks:index:Cluster"]
        assert (eks.inputs["instanceType"], eks.inputs["desiredCapacity"]) == ("m6i.2xlarge", 3)


def test_kind_cluster_inputs_carry_apiserver_settings(mocks, manifests_tree):
    in_pulumi(lambda: _build({"provider": "kind", "name": "k", "kind": {"workers": 2}}, manifests_tree))
    [dyn] = mocks.clusters()
    assert dyn.inputs["workers"] == 2
    assert dyn.inputs["serviceAccountIssuer"] == "https://kubernetes.default.svc"
    assert dyn.inputs["nodeImage"].startswith("kindest/node:")


def test_existing_cluster_creates_nothing_but_a_provider(mocks, manifests_tree, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    cluster = {"provider": "existing", "name": "e", "existing": {"kubeconfig": str(kubeconfig), "context": "ctx"}}
    stack, secret = in_pulumi(lambda: _built_and_secret(_build(cluster, manifests_tree)))
    assert stack.cluster.deleted_with is None  # destroy must delete every object it applied
    assert mocks.clusters() == []
    [prov] = [r for r in mocks.registered if r.typ == "pulumi:providers:kubernetes"]
    assert prov.inputs["context"] == "ctx"
    assert secret


def test_kubeflow_objects_share_one_parent_and_are_registered_after_what_they_need(mocks, manifests_tree):
    def program():
        stack = _build({"provider": "kind", "name": "k"}, manifests_tree)
        urns = [_resolve(r.urn) for r in stack.kubeflow.objects.values()]
        return stack, urns

    stack, urns = in_pulumi(program)
    # The URN does not name what an object needs, so a change of its needs keeps its identity.
    dex_suffix = "kubeflow-stacks:kubeflow:KubeflowDeployment$kubernetes:apps/v1:Deployment::auth/dex"
    assert [u for u in urns if u.endswith(dex_suffix)]
    parents = {u.split("::")[2].split("$")[-2] for u in urns}
    assert parents == {"kubeflow-stacks:kubeflow:KubeflowDeployment"}, parents
    k8s_objects = [r for r in mocks.registered if r.typ.startswith("kubernetes:")]
    # CRDs are one resource (infra/definitions.py); every other object is its own.
    [crds] = [r for r in mocks.registered if "definitions" in r.inputs]
    rendered_crds = {o["metadata"]["name"] for o in stack.rendered.find("CustomResourceDefinition")}
    assert len(rendered_crds) > 50
    assert set(crds.inputs["definitions"]) == rendered_crds
    assert not [r for r in k8s_objects if r.typ.endswith(":CustomResourceDefinition")]
    # So are the RBAC objects (infra/object_set.py), keyed as the cluster keys them.
    [rbac] = [r for r in mocks.registered if r.name == "kubeflow-rbac"]
    rendered_rbac = [o for o in stack.rendered.objects if in_rbac_set(o)]
    assert set(rbac.inputs["objects"]) == set(packed_members(rendered_rbac)) and len(rendered_rbac) > 100
    assert not [r for r in k8s_objects if r.typ.startswith("kubernetes:rbac.authorization.k8s.io/")]
    assert len(k8s_objects) + len(rendered_crds) + len(rendered_rbac) == len(stack.rendered.objects)
    assert set(stack.kubeflow.objects) == {object_key(o) for o in stack.rendered.objects} - \
        {object_key(o) for o in [*stack.rendered.find("CustomResourceDefinition"), *rendered_rbac]}
    # One stable field manager, so objects adopted after an interrupted update can still change.
    managers = {r.inputs["metadata"]["annotations"].get("pulumi.com/patchFieldManager") for r in k8s_objects}
    assert managers == {"kubeflow-stacks"}
    # No phase barriers: the dynamic resources are the cluster, the CRDs, one resource per CRD API
    # group, the RBAC set and one gate per webhook server.
    gates = [r.inputs["server"] for r in mocks.registered if "server" in r.inputs]
    assert gates == sorted(stack.kubeflow.gates) and "cert-manager/cert-manager-webhook" in gates
    served = {r.inputs["group"]: r.inputs["names"] for r in mocks.registered if "group" in r.inputs}
    assert set(served) == {c["spec"]["group"] for c in stack.rendered.find("CustomResourceDefinition")}
    assert sorted(n for names in served.values() for n in names) == sorted(rendered_crds)
    assert crds.inputs["groups"] == list(served)  # applied in the order they are registered
    # Every resource is registered after the resources it depends on (they must exist to be named).
    graph = apply_graph(stack.rendered.objects)
    registered = {(r.typ, r.name): i for i, r in enumerate(mocks.registered)}

    def position(node: str) -> int:
        typ = type_token(graph.objects[node]) if node in graph.objects else "pulumi-python:dynamic:Resource"
        return registered[(typ, node_resource_name(node, graph))]

    late = [(node, dep) for node, deps in graph.needs.items() if node not in graph.gates
            for dep in deps if dep not in graph.gates and position(dep) > position(node)]
    assert late == []


def test_secret_objects_are_secret_inputs(mocks, manifests_tree):
    def program():
        stack = _build({"provider": "sim", "name": "s"}, manifests_tree)
        return [(_resolve(r.urn), _is_secret(r.string_data)) for r in stack.kubeflow.objects.values()
                if r.obj["kind"] == "Secret" and "stringData" in r.obj]

    secrets = in_pulumi(program)
    assert any(urn.endswith("::auth/dex-passwords") for urn, _ in secrets)
    assert all(secret for _, secret in secrets)


def test_invalid_config_registers_nothing(mocks, manifests_tree):
    from infra.program import build_stack

    # A release with no map of its own: its component names are known only once its map is derived
    # from the tree, which refuses this one before anything is registered.
    cfg = parse_stack_config("test", base_raw(kubeflow={"release": "v1.11.1", "include": ["kubeflow-ui"]}),
                             {"auth"})
    with pytest.raises(ConfigError, match=r"kubeflow\.include\[0\] = 'kubeflow-ui': unknown component"):
        in_pulumi(lambda: build_stack(cfg, manifests_tree))
    assert mocks.registered == []


def test_the_apply_graph_keeps_the_orderings_components_need(manifests_tree):
    from infra.manifests.render import render

    rendered = render(parse_stack_config("test", base_raw(), {"auth"}), manifests_tree)
    graph = derive(rendered.objects)

    def node(kind: str, name: str) -> str:
        [obj] = [o for o in rendered.objects if o["kind"] == kind and o["metadata"]["name"] == name]
        return object_key(obj)

    def after(kind: str, name: str, *needs: tuple[str, str]) -> None:
        missing = {node(*n) for n in needs} - graph.reachable(node(kind, name))
        assert not missing, f"{kind} {name} does not wait for {missing}"

    after("ClusterIssuer", "kubeflow-self-signing-issuer", ("Deployment", "cert-manager-webhook"))
    after("Deployment", "katib-controller", ("Certificate", "katib-webhook-cert"))
    after("Deployment", "ml-pipeline", ("MutatingWebhookConfiguration", "istio-sidecar-injector"),
          ("Deployment", "istiod"), ("DaemonSet", "istio-cni-node"))
    after("Profile", "kubeflow-alice-example-org", ("Deployment", "profiles-deployment"))
    # KServe's controller looks for Knative's kinds when it starts: it waits for them to be served,
    # and for its own; not for groups it never names.
    kserve = graph.reachable(node("Deployment", "kserve-controller-manager"))
    assert {served_node("serving.knative.dev"), served_node("serving.kserve.io"), CRDS} <= kserve
    assert served_node("argoproj.io") not in kserve
    # What needs no definitions does not wait for them (they take seconds to be established).
    for name in ("oauth2-proxy", "katib-mysql", "metadata-envoy-deployment"):
        assert CRDS not in graph.reachable(node("Deployment", name)), name
    assert all(graph.needs[object_key(n)] == {} for n in rendered.find("Namespace"))


def test_static_volumes_and_their_class_come_before_the_claims(manifests_tree):
    """A claim created before its pre-bound volume waits for the binder's resync (15 s)."""
    from infra.manifests.render import render

    cfg = parse_stack_config("test", base_raw(storage={"mode": "static", "defaultClass": "kf-static"}), {"auth"})
    rendered = render(cfg, manifests_tree)
    graph = derive(rendered.objects)
    [storage_class] = rendered.find("StorageClass")
    volumes = rendered.find("PersistentVolume")
    claims = rendered.find("PersistentVolumeClaim")
    assert len(volumes) == 3 and len(claims) == 3
    for claim in claims:
        ns, name = claim["metadata"]["namespace"], claim["metadata"]["name"]
        [volume] = [v for v in volumes if v["spec"]["claimRef"] == {"namespace": ns, "name": name}]
        assert graph.needs[object_key(claim)] == {f"core/Namespace:{ns}": "namespace",
                                                  object_key(storage_class): "storage", object_key(volume): "storage"}
        assert graph.needs[object_key(volume)] == {object_key(storage_class): "storage"}
