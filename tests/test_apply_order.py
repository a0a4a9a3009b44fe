"""T1: the apply's dependency graph and awaits, checked over the real render of upstream v1.11.0.

Defects only a real cluster shows, caught here from the render alone: an injected workload awaited
before Istio's CNI node agent can never become ready (its `istio-validation` init container waits
for the plugin), and a webhook whose CA nobody awaits fails what it intercepts with an x509 error.
The graph (infra/dependencies.py) must keep both orderings, name only objects of the render,
satisfy every reference a pod template makes, and stay linear in the number of objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.apply import WAIT_FOR_ANNOTATION, WEBHOOK_KINDS, WORKLOAD_KINDS, apply_graph, with_awaits
from infra.config import parse_stack_config
from infra.dependencies import CRDS, GATE_PREFIX, Graph, derive, pod_references, pod_template, served_node
from infra.manifests.objects import Rendered, object_key
from infra.manifests.render import render
from infra.object_set import RBAC_SET, in_rbac_set
from tests.helpers import base_raw

pytestmark = pytest.mark.render
EDGES_PER_OBJECT = 3  # the graph's edges stay below this many per rendered object


@pytest.fixture(scope="module")
def kind_render(manifests_tree: Path) -> Rendered:
    raw = base_raw(cluster={"provider": "kind", "name": "kubeflow"}, storage={"mode": "local-path"})
    return render(parse_stack_config("test", raw, {"auth"}), manifests_tree)


@pytest.fixture(scope="module")
def graph(kind_render: Rendered) -> Graph:
    return derive(kind_render.objects)


def key_of(rendered: Rendered, kind: str, name: str, namespace: str | None = None) -> str:
    [obj] = rendered.find(kind, name, namespace)
    return object_key(obj)


def is_injected(obj: dict[str, Any], injected_namespaces: set[str]) -> bool:
    """Whether Istio's injector gives this workload's pods a sidecar (and so the CNI check)."""
    meta = (pod_template(obj) or {}).get("metadata") or {}
    says = (meta.get("labels") or {}).get("sidecar.istio.io/inject",
                                           (meta.get("annotations") or {}).get("sidecar.istio.io/inject"))
    if says is not None:
        return str(says).lower() == "true"
    return obj["metadata"].get("namespace", "") in injected_namespaces


def test_no_injected_workload_is_awaited_before_the_istio_cni_agent(kind_render: Rendered, graph: Graph) -> None:
    cni = key_of(kind_render, "DaemonSet", "istio-cni-node", "kube-system")
    injector = key_of(kind_render, "MutatingWebhookConfiguration", "istio-sidecar-injector")
    istiod = key_of(kind_render, "Deployment", "istiod", "istio-system")
    namespaces = {n["metadata"]["name"] for n in kind_render.find("Namespace")
                  if (n["metadata"].get("labels") or {}).get("istio-injection") == "enabled"}
    injected = [o for o in kind_render.objects if o["kind"] in WORKLOAD_KINDS and is_injected(o, namespaces)]
    assert len(injected) > 10, "expected many injected workloads in the full release"
    early = [object_key(o) for o in injected if not {cni, injector, istiod} <= graph.reachable(object_key(o))]
    assert early == [], f"injected, but not after the CNI agent, the injector and istiod: {early}"
    # And none of Istio's own parts waits for the injector (they are not injected).
    for name, ns in (("istiod", "istio-system"), ("istio-ingressgateway", "istio-system")):
        assert injector not in graph.reachable(key_of(kind_render, "Deployment", name, ns))
    assert injector not in graph.reachable(cni)


def test_every_webhook_without_a_ca_in_the_render_is_awaited(kind_render: Rendered) -> None:
    listing = []
    for obj in kind_render.objects:
        if obj["kind"] not in WEBHOOK_KINDS:
            continue
        annotations = obj["metadata"].get("annotations") or {}
        source = (annotations.get("cert-manager.io/inject-ca-from")
                  or annotations.get("cert-manager.io/inject-ca-from-secret") or "its own controller")
        awaited = (with_awaits(obj)["metadata"].get("annotations") or {}).get(WAIT_FOR_ANNOTATION, "")
        for i, hook in enumerate(obj.get("webhooks") or []):
            has_ca = bool((hook.get("clientConfig") or {}).get("caBundle"))
            listing.append((obj["metadata"]["name"], i, source, has_ca, awaited))
            assert has_ca or f"webhooks[{i}].clientConfig.caBundle" in awaited, (obj["metadata"]["name"], i)
    print("\n".join(f"{n}[{i}] injected by {s}: {'ships a CA' if c else a}" for n, i, s, c, a in listing))
    names = {n for n, *_ in listing}
    # cert-manager's own webhooks (CA from a Secret) and Knative's (filled by its controller) included.
    assert {"cert-manager-webhook", "webhook.serving.knative.dev"} <= names


def test_no_webhook_is_applied_with_an_empty_ca_bundle(kind_render: Rendered) -> None:
    empty = [o["metadata"]["name"] for o in kind_render.objects if o["kind"] in WEBHOOK_KINDS
             for h in o.get("webhooks") or [] if "caBundle" in (h.get("clientConfig") or {})
             and not h["clientConfig"]["caBundle"]]
    assert empty == []


def test_aggregated_cluster_roles_come_before_the_roles_they_gather(kind_render: Rendered, graph: Graph) -> None:
    """So a removal deletes them last (see infra/dependencies.py `aggregating_roles`): the aggregation
    controller would otherwise re-create a deleted one while the roles it gathers are still being deleted."""
    from infra.dependencies import aggregating_roles, is_aggregated_role

    roles = [o for o in kind_render.objects if o["kind"] == "ClusterRole"]
    aggregators = {o["metadata"]["name"]: o for o in roles if is_aggregated_role(o)}
    assert {"kubeflow-admin", "kubeflow-edit"} <= set(aggregators)
    gathered = {o["metadata"]["name"]: aggregating_roles(o, aggregators) for o in roles}
    assert gathered["kubeflow-edit"] == ["kubeflow-admin"]
    order = graph.order()
    for name, gatherers in gathered.items():
        for gatherer in gatherers:
            role, aggregator = key_of(kind_render, "ClusterRole", name), key_of(kind_render, "ClusterRole", gatherer)
            assert graph.needs[role][aggregator] == "aggregation"
            assert order.index(aggregator) < order.index(role)


def test_kserves_first_apply_waits_for_its_webhooks_and_their_ca(kind_render: Rendered, graph: Graph) -> None:
    """Upstream's one-shot apply of KServe fails its first time: its serving runtimes reach the API
    server before the webhook that validates them has a CA and a running server behind it. Here each
    runtime waits for the definitions and for KServe's admission gate, the gate for KServe's webhook
    configurations (each awaited until cert-manager injects its CA), those for the controller
    (awaited available), and the controller for the certificate whose Secret it mounts."""
    controller = key_of(kind_render, "Deployment", "kserve-controller-manager", "kubeflow")
    certificate = key_of(kind_render, "Certificate", "serving-cert", "kubeflow")
    gate = GATE_PREFIX + "kubeflow/kserve-webhook-server-service"
    hooks = [object_key(o) for o in kind_render.objects
             if o["kind"] in WEBHOOK_KINDS and "kserve" in o["metadata"]["name"]]
    runtimes = [object_key(o) for o in kind_render.find("ClusterServingRuntime")]
    assert hooks and runtimes and gate in graph.gates
    assert set(graph.gates[gate].webhooks) == set(hooks)
    assert certificate in graph.needs[controller]
    for hook in hooks:
        assert graph.needs[hook][controller] == "webhook-server"
        assert WAIT_FOR_ANNOTATION in with_awaits(graph.objects[hook])["metadata"]["annotations"]
    for runtime in runtimes:
        assert graph.needs[runtime][gate] == "webhook"
        assert {CRDS, *hooks, controller, certificate} <= graph.reachable(runtime)


def test_cert_managers_issuers_wait_for_its_served_webhook(kind_render: Rendered, graph: Graph) -> None:
    """kind-local's intermittent failure at cert-manager's Issuers (infra/admission.py): they wait
    for the gate that dry-runs them, which waits for cert-manager's webhook configurations (CA
    awaited), which wait for the webhook's Deployment (available)."""
    gate = GATE_PREFIX + "cert-manager/cert-manager-webhook"
    issuer = key_of(kind_render, "ClusterIssuer", "kubeflow-self-signing-issuer")
    webhook = key_of(kind_render, "Deployment", "cert-manager-webhook", "cert-manager")
    assert graph.needs[issuer][gate] == "webhook"
    assert ("ClusterIssuer", "kubeflow-self-signing-issuer") in {
        (p["kind"], p["metadata"]["name"]) for p in graph.gates[gate].probes}
    assert webhook in graph.reachable(gate)
    for certificate in kind_render.find("Certificate"):
        if certificate["apiVersion"].startswith("cert-manager.io/"):  # not Knative's own Certificates
            assert gate in graph.needs[object_key(certificate)]


def test_what_a_webhook_intercepts_waits_for_its_ca_and_its_server(kind_render: Rendered, graph: Graph) -> None:
    """Every object a webhook intercepts waits (through its server's gate, or directly for pods) for
    that webhook's configuration, whose CA is in the render or awaited, and for the workloads
    behind the webhook's Service."""
    from infra.dependencies import Index, backing_workloads, hook_matches, server_of

    ix = Index(kind_render.objects)
    checked = 0
    for config_key, config in ix.webhooks:
        awaited = (with_awaits(config)["metadata"].get("annotations") or {}).get(WAIT_FOR_ANNOTATION, "")
        for i, hook in enumerate(config.get("webhooks") or []):
            assert (hook.get("clientConfig") or {}).get("caBundle") or f"webhooks[{i}]" in awaited, config_key
            service = (hook["clientConfig"].get("service") or {})
            servers = backing_workloads(ix.key("Service", service.get("namespace", ""), service.get("name", "")), ix)
            assert servers, f"{config_key}: no workload behind {server_of(hook)}"
            for key, obj in ix.objects.items():
                if obj["kind"] in WEBHOOK_KINDS or key in graph.reachable(config_key) | {config_key}:
                    continue  # what serving the webhook takes comes before it
                template = pod_template(obj)
                if hook_matches(hook, ix.request_for(obj)) or (
                        template is not None and hook_matches(hook, ix.pod_request(obj, template))):
                    missing = {config_key, *servers} - graph.reachable(key)
                    assert not missing, f"{key} is intercepted by {config_key} but does not wait for {missing}"
                    checked += 1
    print(f"\n{checked} (object, webhook) interceptions, each after its webhook's CA and server")
    assert checked > 50


@pytest.fixture(scope="module")
def sim_render(manifests_tree: Path) -> Rendered:
    """The T2 stack's render: no webhooks, static volumes."""
    raw = base_raw(cluster={"provider": "sim", "name": "s"}, storage={"mode": "static", "defaultClass": "kf-static"})
    return render(parse_stack_config("test", raw, {"auth"}), manifests_tree)


@pytest.mark.parametrize("stack", ["kind", "sim"])
def test_the_graph_of_the_whole_release(stack: str, request: pytest.FixtureRequest) -> None:
    """Every need is a node of this render; every reference a pod template makes to an object of
    the render is a need; the order exists; the edges stay linear in the number of objects."""
    rendered: Rendered = request.getfixturevalue(f"{stack}_render")
    graph = derive(rendered.objects)
    objects = rendered.objects
    nodes = set(graph.nodes())
    assert set(graph.objects) | {object_key(c) for c in graph.crds} == {object_key(o) for o in objects}
    assert set(graph.needs) <= nodes
    strangers = {(node, dep) for node, deps in graph.needs.items() for dep in deps if dep not in nodes}
    assert strangers == set()
    assert (CRDS in nodes) == bool(graph.crds) and all(g.startswith(GATE_PREFIX) for g in graph.gates)
    unmet = []
    for obj in objects:
        template = pod_template(obj)
        if template is None:
            continue
        ns = obj["metadata"].get("namespace", "")
        for kind, name in pod_references(template):
            found = rendered.find(kind, name, None if kind == "PriorityClass" else ns)
            if found and object_key(found[0]) not in graph.needs[object_key(obj)]:
                unmet.append(f"{object_key(obj)} -> {kind} {name}")
    assert unmet == []
    order = graph.order()
    position = {node: i for i, node in enumerate(order)}
    assert sorted(order) == sorted(nodes)
    assert all(position[dep] < position[node] for node, deps in graph.needs.items() for dep in deps)
    edges = graph.edge_count()
    print(f"\nv1.11.0 full render ({stack}): {len(objects)} objects ({len(graph.crds)} CRDs as one node), "
          f"{len(nodes)} nodes ({len(graph.gates)} admission gates), {edges} edges, "
          f"{edges / len(objects):.2f} per object; busiest: "
          f"{max(graph.needs, key=lambda n: len(graph.needs[n]))}")
    assert edges <= EDGES_PER_OBJECT * len(objects)


@pytest.mark.parametrize("stack", ["kind", "sim"])
def test_what_uses_a_kind_waits_for_its_api_group_served(stack: str, request: pytest.FixtureRequest) -> None:
    """One served node per API group of the render's CRDs, each after the CRD resource alone; every
    custom resource after its group's node; the controllers that exited at start when they came up
    before their kinds were served (session 25, docs/benchmarks.md) after their groups'."""
    rendered: Rendered = request.getfixturevalue(f"{stack}_render")
    graph = derive(rendered.objects)
    crds = rendered.find("CustomResourceDefinition")
    groups = {c["spec"]["group"] for c in crds}
    assert set(graph.served) == {served_node(g) for g in groups} and len(groups) > 10
    assert sorted(object_key(c) for node in graph.served.values() for c in node) == sorted(map(object_key, crds))
    assert all(graph.needs[node] == {CRDS: "crd"} for node in graph.served)
    kinds = {(c["spec"]["group"], c["spec"]["names"]["kind"]) for c in crds}
    custom = [o for o in rendered.objects if (o["apiVersion"].split("/")[0], o["kind"]) in kinds]
    assert custom and all(graph.needs[object_key(o)].get(served_node(o["apiVersion"].split("/")[0])) == "crd"
                          for o in custom)
    for name, group in (("workflow-controller", "argoproj.io"),
                        ("kserve-localmodel-controller-manager", "serving.kserve.io")):
        assert served_node(group) in graph.needs[key_of(rendered, "Deployment", name)], name


def test_pipelines_api_server_waits_for_its_database_and_object_store(kind_render: Rendered, graph: Graph) -> None:
    """Started before them, it exits until they answer, and the back-off between its restarts
    outlasted them: available 36 s after MySQL and the object store on kind-local (session 29)."""
    needs = graph.needs[key_of(kind_render, "Deployment", "ml-pipeline")]
    assert needs.get(key_of(kind_render, "Deployment", "mysql")) == "service"
    assert needs.get(key_of(kind_render, "Deployment", "seaweedfs")) == "service"
    assert needs.get(key_of(kind_render, "Deployment", "mysql", "kubeflow")) == "service"


@pytest.mark.parametrize("stack", ["kind", "sim"])
def test_the_apply_registers_the_rbac_objects_as_one_node(stack: str, request: pytest.FixtureRequest) -> None:
    """The graph the apply registers (infra/apply.py `apply_graph`): every RBAC object of the
    render in the set and nothing else; the set needs only Namespaces; every workload that needed
    one of its objects needs the set; it orders; it has fewer edges than the derived graph."""
    rendered: Rendered = request.getfixturevalue(f"{stack}_render")
    derived, applied = derive(rendered.objects), apply_graph(rendered.objects)
    members = {object_key(o) for o in applied.sets[RBAC_SET]}
    assert members == {object_key(o) for o in rendered.objects if in_rbac_set(o)} and len(members) > 150
    assert members.isdisjoint(applied.objects)
    assert {dep.split(":")[0] for dep in applied.needs[RBAC_SET]} == {"core/Namespace"}
    needed_a_member = {node for node, deps in derived.needs.items() if node not in members and set(deps) & members}
    assert needed_a_member and all(RBAC_SET in applied.needs[node] for node in needed_a_member)
    assert {derived.objects[n]["kind"] for n in needed_a_member} <= WORKLOAD_KINDS
    order = applied.order()
    assert sorted(order) == sorted(applied.nodes())
    assert applied.edge_count() < derived.edge_count()
