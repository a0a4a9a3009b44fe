"""T0: each rule of the dependency graph (infra/dependencies.py) on small, made-up object lists.

The whole v1.11.0 render is checked in tests/test_apply_order.py (T1)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.dependencies import (
    CRDS,
    GATE_PREFIX,
    PROBE_LIMIT,
    DependencyCycle,
    Graph,
    derive,
    plural_of,
    pod_references,
    selector_matches,
    served_node,
    served_order,
)
from infra.manifests.objects import object_key

Obj = dict[str, Any]


def obj(api: str, kind: str, name: str, ns: str | None = None, labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None, **fields: Any) -> Obj:
    meta: Obj = {"name": name}
    if ns:
        meta["namespace"] = ns
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": api, "kind": kind, "metadata": meta, **fields}


def namespace(name: str, **labels: str) -> Obj:
    return obj("v1", "Namespace", name, labels=labels or None)


def deployment(name: str, ns: str, pod_spec: Obj | None = None, pod_labels: dict[str, str] | None = None,
               labels: dict[str, str] | None = None) -> Obj:
    template = {"metadata": {"labels": pod_labels or {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "i"}], **(pod_spec or {})}}
    return obj("apps/v1", "Deployment", name, ns, labels=labels,
               spec={"selector": {"matchLabels": pod_labels or {"app": name}}, "template": template})


def crd(group: str, kind: str, plural: str, labels: dict[str, str] | None = None, scope: str = "Namespaced") -> Obj:
    return obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", f"{plural}.{group}", labels=labels,
               spec={"group": group, "scope": scope, "names": {"kind": kind, "plural": plural},
                     "versions": [{"name": "v1", "served": True, "storage": True}]})


def service(name: str, ns: str, selector: dict[str, str]) -> Obj:
    return obj("v1", "Service", name, ns, spec={"selector": selector, "ports": [{"port": 443}]})


def webhook_config(name: str, rules: list[Obj], service_ref: tuple[str, str] = ("hooks", "hook-svc"),
                   kind: str = "ValidatingWebhookConfiguration", labels: dict[str, str] | None = None,
                   annotations: dict[str, str] | None = None, **selectors: Obj) -> Obj:
    hook = {"name": f"{name}.example.org", "clientConfig": {"service": {"namespace": service_ref[0],
                                                                          "name": service_ref[1]}},
            "rules": rules, **selectors}
    return obj("admissionregistration.k8s.io/v1", kind, name, labels=labels, annotations=annotations,
               webhooks=[hook])


def rule(groups: list[str], resources: list[str], operations: list[str] | None = None) -> Obj:
    return {"apiGroups": groups, "apiVersions": ["*"], "resources": resources, "operations": operations or ["CREATE"]}


def key(o: Obj) -> str:
    return object_key(o)


def needs(graph: Graph, o: Obj) -> dict[str, str]:
    return graph.needs[key(o)]


# --- reading objects -------------------------------------------------------------------------


def test_selectors_as_the_api_server_reads_them() -> None:
    labels = {"a": "1", "b": "2"}
    assert selector_matches(None, labels) and selector_matches({}, labels)
    assert selector_matches({"matchLabels": {"a": "1"}}, labels)
    assert not selector_matches({"matchLabels": {"a": "2"}}, labels)
    expr = lambda op, *values: {"matchExpressions": [{"key": "a", "operator": op, "values": list(values)}]}  # noqa: E731
    assert selector_matches(expr("In", "1", "3"), labels) and not selector_matches(expr("In", "3"), labels)
    assert selector_matches(expr("NotIn", "3"), labels) and not selector_matches(expr("NotIn", "1"), labels)
    assert selector_matches(expr("NotIn", "1"), {})  # NotIn holds where the key is absent
    assert selector_matches(expr("Exists"), labels) and not selector_matches(expr("Exists"), {})
    assert selector_matches(expr("DoesNotExist"), {}) and not selector_matches(expr("DoesNotExist"), labels)


def test_plurals_of_built_in_and_custom_kinds() -> None:
    assert plural_of("NetworkPolicy", {}, "networking.k8s.io") == "networkpolicies"
    assert plural_of("Endpoints", {}, "") == "endpoints"
    assert plural_of("Ingress", {}, "networking.k8s.io") == "ingresses"
    assert plural_of("PriorityClass", {}, "scheduling.k8s.io") == "priorityclasses"
    assert plural_of("Gateway", {}, "networking.istio.io") == "gateways"
    assert plural_of("Widget", {("example.org", "Widget"): "widgetz"}, "example.org") == "widgetz"


def test_pod_references_cover_volumes_env_and_accounts() -> None:
    template = {"spec": {
        "serviceAccountName": "sa", "priorityClassName": "high", "imagePullSecrets": [{"name": "pull"}],
        "volumes": [{"name": "v1", "configMap": {"name": "cm-vol"}}, {"name": "v2", "secret": {"secretName": "s-vol"}},
                    {"name": "v3", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "v4", "projected": {"sources": [{"configMap": {"name": "cm-proj"}},
                                                             {"secret": {"name": "s-proj"}},
                                                             {"serviceAccountToken": {"path": "t"}}]}},
                    {"name": "v5", "emptyDir": {}}],
        "initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "cm-from"}}]}],
        "containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "s-from"}}],
                        "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm-key", "key": "k"}}},
                                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s-key", "key": "k"}}},
                                {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                {"name": "D", "value": "plain"}]}]}}
    assert sorted(pod_references(template)) == sorted([
        ("ServiceAccount", "sa"), ("PriorityClass", "high"), ("Secret", "pull"), ("ConfigMap", "cm-vol"),
        ("Secret", "s-vol"), ("PersistentVolumeClaim", "data"), ("ConfigMap", "cm-proj"), ("Secret", "s-proj"),
        ("ConfigMap", "cm-from"), ("Secret", "s-from"), ("ConfigMap", "cm-key"), ("Secret", "s-key")])


# --- one rule at a time ----------------------------------------------------------------------


def test_namespace_rule_only_for_namespaces_in_the_render() -> None:
    ns = namespace("a")
    cm = obj("v1", "ConfigMap", "c", "a")
    elsewhere = obj("v1", "ConfigMap", "c", "kube-system")
    cluster_wide = obj("rbac.authorization.k8s.io/v1", "ClusterRole", "r")
    graph = derive([cm, elsewhere, cluster_wide, ns])
    assert needs(graph, cm) == {key(ns): "namespace"}
    assert needs(graph, elsewhere) == {} and needs(graph, cluster_wide) == {} and needs(graph, ns) == {}


def test_pod_rule_names_what_the_template_uses_and_only_that() -> None:
    ns = namespace("a")
    sa, cm = obj("v1", "ServiceAccount", "sa", "a"), obj("v1", "ConfigMap", "cm", "a")
    other_cm = obj("v1", "ConfigMap", "x", "a")
    secret, claim = obj("v1", "Secret", "s", "a"), obj("v1", "PersistentVolumeClaim", "data", "a")
    priority = obj("scheduling.k8s.io/v1", "PriorityClass", "high")
    same_name_elsewhere = obj("v1", "ConfigMap", "cm", "b")
    spec = {"serviceAccountName": "sa", "priorityClassName": "high",
            "volumes": [{"name": "v", "configMap": {"name": "cm"}},
                        {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
                        {"name": "ca", "secret": {"secretName": "not-rendered"}}],
            "containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "s"}}]}]}
    app = deployment("app", "a", spec)
    job = obj("batch/v1", "CronJob", "nightly", "a", spec={"jobTemplate": {"spec": {"template": {"spec": spec}}}})
    graph = derive([ns, sa, cm, other_cm, secret, claim, priority, same_name_elsewhere, app, job])
    wanted = {key(ns): "namespace", key(sa): "pod", key(priority): "pod", key(cm): "pod", key(claim): "pod",
              key(secret): "pod"}
    assert needs(graph, app) == wanted
    assert needs(graph, job) == wanted


def test_certificate_rule_a_mounted_secret_waits_for_the_certificate_that_issues_it() -> None:
    cert = obj("cert-manager.io/v1", "Certificate", "serving-cert", "a", spec={"secretName": "webhook-tls"})
    other = obj("cert-manager.io/v1", "Certificate", "serving-cert", "b", spec={"secretName": "webhook-tls"})
    app = deployment("app", "a", {"volumes": [{"name": "tls", "secret": {"secretName": "webhook-tls"}}]})
    graph = derive([cert, other, app])
    assert needs(graph, app) == {key(cert): "certificate"}


def test_issuer_rule() -> None:
    issuer = obj("cert-manager.io/v1", "Issuer", "self", "a")
    cluster_issuer = obj("cert-manager.io/v1", "ClusterIssuer", "root")
    by_issuer = obj("cert-manager.io/v1", "Certificate", "c1", "a",
                    spec={"secretName": "s1", "issuerRef": {"name": "self"}})
    by_cluster = obj("cert-manager.io/v1", "Certificate", "c2", "a",
                     spec={"secretName": "s2", "issuerRef": {"name": "root", "kind": "ClusterIssuer"}})
    external = obj("cert-manager.io/v1", "Certificate", "c3", "a",
                   spec={"secretName": "s3", "issuerRef": {"name": "self", "kind": "Issuer", "group": "example.org"}})
    graph = derive([issuer, cluster_issuer, by_issuer, by_cluster, external])
    assert needs(graph, by_issuer) == {key(issuer): "issuer"}
    assert needs(graph, by_cluster) == {key(cluster_issuer): "issuer"}
    assert needs(graph, external) == {}


def test_crd_rule_custom_resources_wait_for_their_api_group_served() -> None:
    widgets, gadgets = crd("example.org", "Widget", "widgets"), crd("example.org", "Gadget", "gadgets")
    tools = crd("tools.example.org", "Tool", "tools")
    widget = obj("example.org/v1", "Widget", "w", "a")
    tool = obj("tools.example.org/v1", "Tool", "t", "a")
    unknown = obj("elsewhere.org/v1", "Gizmo", "g", "a")  # its CRD is not in this render: nothing to wait for
    graph = derive([widgets, gadgets, tools, widget, tool, unknown])
    assert needs(graph, widget) == {served_node("example.org"): "crd"}
    assert needs(graph, tool) == {served_node("tools.example.org"): "crd"}
    assert needs(graph, unknown) == {}
    assert graph.crds == [widgets, gadgets, tools] and key(widgets) not in graph.objects
    # One node per API group, with that group's definitions; each needs the CRD resource alone.
    assert {node: [c["metadata"]["name"] for c in crds] for node, crds in graph.served.items()} == {
        served_node("example.org"): ["widgets.example.org", "gadgets.example.org"],
        served_node("tools.example.org"): ["tools.tools.example.org"]}
    assert all(graph.needs[node] == {CRDS: "crd"} for node in graph.served)
    order = graph.order()
    assert order[0] == CRDS and set(order[1:3]) == set(graph.served)


def test_rbac_rule_a_workload_waits_for_its_rights_and_a_controller_for_its_kinds() -> None:
    widgets = crd("example.org", "Widget", "widgets")
    role = obj("rbac.authorization.k8s.io/v1", "Role", "reader", "a", rules=[rule([""], ["configmaps"])])
    cluster_role = obj("rbac.authorization.k8s.io/v1", "ClusterRole", "widgets",
                       rules=[rule(["example.org"], ["widgets"], ["get", "watch"])])
    binding = obj("rbac.authorization.k8s.io/v1", "RoleBinding", "reader", "a",
                  roleRef={"kind": "Role", "name": "reader"}, subjects=[{"kind": "ServiceAccount", "name": "plain"}])
    cluster_binding = obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "widgets",
                          roleRef={"kind": "ClusterRole", "name": "widgets"},
                          subjects=[{"kind": "ServiceAccount", "name": "ctl", "namespace": "a"},
                                    {"kind": "Group", "name": "system:authenticated"}])
    plain = deployment("plain", "a", {"serviceAccountName": "plain"})
    controller = deployment("controller", "a", {"serviceAccountName": "ctl"})
    graph = derive([widgets, role, cluster_role, binding, cluster_binding, plain, controller])
    assert needs(graph, binding) == {key(role): "rbac"}
    assert needs(graph, cluster_binding) == {key(cluster_role): "rbac"}
    assert needs(graph, plain) == {key(binding): "rbac"}  # core groups only: the CRDs are not its business
    assert needs(graph, controller) == {key(cluster_binding): "rbac", served_node("example.org"): "crd"}


def test_rbac_rule_a_controller_waits_for_the_groups_its_roles_name_and_for_all_on_a_wildcard() -> None:
    defs = [crd("a.example.org", "A", "as"), crd("b.example.org", "B", "bs"), crd("c.example.org", "C", "cs")]
    narrow = obj("rbac.authorization.k8s.io/v1", "ClusterRole", "narrow",
                 rules=[rule(["a.example.org", "apps"], ["as", "deployments"]), rule(["b.example.org"], ["bs"])])
    wide = obj("rbac.authorization.k8s.io/v1", "ClusterRole", "wide", rules=[rule(["*"], ["*"])])
    bindings = [obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", name,
                    roleRef={"kind": "ClusterRole", "name": name},
                    subjects=[{"kind": "ServiceAccount", "name": name, "namespace": "a"}])
                for name in ("narrow", "wide")]
    narrow_ctl = deployment("narrow", "a", {"serviceAccountName": "narrow"})
    wide_ctl = deployment("wide", "a", {"serviceAccountName": "wide"})
    graph = derive([*defs, narrow, wide, *bindings, narrow_ctl, wide_ctl])
    crd_needs = {node for node, rule_ in needs(graph, narrow_ctl).items() if rule_ == "crd"}
    assert crd_needs == {served_node("a.example.org"), served_node("b.example.org")}
    assert {node for node, rule_ in needs(graph, wide_ctl).items() if rule_ == "crd"} == set(graph.served)


def test_service_rule_a_server_waits_for_the_servers_it_is_told_to_call() -> None:
    db, store = deployment("db", "a"), deployment("store", "b")
    db_svc, store_svc = service("db", "a", {"app": "db"}), service("store-svc", "b", {"app": "store"})
    settings = obj("v1", "ConfigMap", "settings", "a", data={"dbHost": "db", "dbType": "db"})
    api = deployment("api", "a", {"containers": [{"name": "c", "image": "i", "env": [
        {"name": "DB_HOST", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "dbHost"}}},
        {"name": "STORE_ENDPOINT", "value": "http://store-svc.b.svc.cluster.local:9000/bucket"}]}]})
    # A value under a name that does not say host (a database's name, a type) is not read as one.
    named_only = deployment("named", "a", {"containers": [{"name": "c", "image": "i", "env": [
        {"name": "DB_NAME", "value": "db"}, {"name": "DB_TYPE", "valueFrom": {
            "configMapKeyRef": {"name": "settings", "key": "dbType"}}}]}]})
    flagged = deployment("flagged", "a", {"containers": [{"name": "c", "image": "i",
                                                          "args": ["--db-address=db:5432", "--name=db"]}]})
    outside = deployment("outside", "a", {"containers": [{"name": "c", "image": "i", "env": [
        {"name": "UPSTREAM_URL", "value": "https://db.example.org/x"}]}]})
    graph = derive([db, store, db_svc, store_svc, settings, api, named_only, flagged, outside])
    assert {d for d, r in needs(graph, api).items() if r == "service"} == {key(db), key(store)}
    assert "service" not in needs(graph, named_only).values()
    assert {d for d, r in needs(graph, flagged).items() if r == "service"} == {key(db)}
    assert "service" not in needs(graph, outside).values()


def test_service_rule_two_servers_that_name_each_other_start_together() -> None:
    def server(name: str, calls: str) -> Obj:
        return deployment(name, "a", {"containers": [{"name": "c", "image": "i",
                                                     "env": [{"name": "PEER_HOST", "value": calls}]}]})

    left, right = server("left", "right"), server("right", "left")
    graph = derive([left, right, service("left", "a", {"app": "left"}), service("right", "a", {"app": "right"})])
    edges = {(key(o), d) for o in (left, right) for d, r in needs(graph, o).items() if r == "service"}
    assert edges == {(key(left), key(right))}  # the second edge would close a loop
    graph.order()  # and the graph still orders


def test_served_order_applies_first_the_groups_that_let_the_most_workloads_start() -> None:
    needs_: dict[str, dict[str, str]] = {
        "w1": {"served:a": "crd"}, "w2": {"served:a": "crd", "served:c": "crd"},
        "w3": {"cert": "certificate"}, "cert": {"issuer": "issuer"}, "issuer": {"served:b": "crd"},
        "w4": {"served:b": "crd"}, "cr": {"served:d": "crd"}, "w5": {},
    }
    # b lets two workloads start (one through a Certificate and its Issuer), a one, then c finishes
    # w2; d holds back no workload, so it comes last.
    order = served_order(needs_, ["served:a", "served:b", "served:c", "served:d"], ["w1", "w2", "w3", "w4", "w5"])
    assert order == ["served:b", "served:a", "served:c", "served:d"]


def test_aggregation_rule_and_rights_gathered_by_an_aggregated_role() -> None:
    widgets = crd("example.org", "Widget", "widgets")
    admin = obj("rbac.authorization.k8s.io/v1", "ClusterRole", "admin", labels={"tier": "top"},
                aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"to-admin": "true"}}]})
    edit = obj("rbac.authorization.k8s.io/v1", "ClusterRole", "edit", labels={"to-admin": "true"},
               aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"to-edit": "true"}}]})
    widget_edit = obj("rbac.authorization.k8s.io/v1", "ClusterRole", "widget-edit", labels={"to-edit": "true"},
                      rules=[rule(["example.org"], ["widgets"], ["*"])])
    binding = obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "admin",
                  roleRef={"kind": "ClusterRole", "name": "admin"},
                  subjects=[{"kind": "ServiceAccount", "name": "ctl", "namespace": "a"}])
    controller = deployment("controller", "a", {"serviceAccountName": "ctl"})
    graph = derive([widget_edit, edit, admin, widgets, binding, controller])
    assert needs(graph, edit) == {key(admin): "aggregation"}
    assert needs(graph, widget_edit) == {key(edit): "aggregation"}
    assert served_node("example.org") in needs(graph, controller)  # rights reach it through two aggregations
    order = graph.order()
    assert order.index(key(admin)) < order.index(key(edit)) < order.index(key(widget_edit))


def test_storage_rule_claims_volumes_and_classes() -> None:
    fast = obj("storage.k8s.io/v1", "StorageClass", "fast")
    default = obj("storage.k8s.io/v1", "StorageClass", "standard",
                  annotations={"storageclass.kubernetes.io/is-default-class": "true"})
    volume = obj("v1", "PersistentVolume", "pv-data", spec={"storageClassName": "fast",
                                                            "claimRef": {"namespace": "a", "name": "data"}})
    named = obj("v1", "PersistentVolume", "pv-named", spec={"storageClassName": "fast"})
    data = obj("v1", "PersistentVolumeClaim", "data", "a", spec={"storageClassName": "fast"})
    by_name = obj("v1", "PersistentVolumeClaim", "by-name", "a",
                  spec={"storageClassName": "fast", "volumeName": "pv-named"})
    defaulted = obj("v1", "PersistentVolumeClaim", "defaulted", "a", spec={})
    classless = obj("v1", "PersistentVolumeClaim", "classless", "a", spec={"storageClassName": ""})
    db = obj("apps/v1", "StatefulSet", "db", "a", spec={
        "template": {"spec": {"containers": []}},
        "volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {"storageClassName": "fast"}}]})
    graph = derive([fast, default, volume, named, data, by_name, defaulted, classless, db])
    assert needs(graph, volume) == {key(fast): "storage"}
    assert needs(graph, data) == {key(fast): "storage", key(volume): "storage"}
    assert needs(graph, by_name) == {key(fast): "storage", key(named): "storage"}
    assert needs(graph, defaulted) == {key(default): "storage"}
    assert needs(graph, classless) == {}
    assert needs(graph, db) == {key(fast): "storage"}


def test_account_rule_pull_secrets_and_token_secrets() -> None:
    pull = obj("v1", "Secret", "pull", "a")
    account = obj("v1", "ServiceAccount", "sa", "a", imagePullSecrets=[{"name": "pull"}])
    token = obj("v1", "Secret", "sa-token", "a", annotations={"kubernetes.io/service-account.name": "sa"},
                type="kubernetes.io/service-account-token")
    graph = derive([token, account, pull])
    assert needs(graph, account) == {key(pull): "account"}
    assert needs(graph, token) == {key(account): "account"}


def test_controller_rule_follows_the_crds_component_label() -> None:
    profiles = crd("kubeflow.org", "Profile", "profiles", labels={"kustomize.component": "profiles"}, scope="Cluster")
    gadgets = crd("example.org", "Gadget", "gadgets")
    controller = deployment("profiles", "kubeflow", labels={"kustomize.component": "profiles"})
    bystander = deployment("other", "kubeflow", labels={"kustomize.component": "other"})
    profile = obj("kubeflow.org/v1", "Profile", "alice")
    gadget = obj("example.org/v1", "Gadget", "g", "a")
    graph = derive([profiles, gadgets, controller, bystander, profile, gadget])
    assert needs(graph, profile) == {served_node("kubeflow.org"): "crd", key(controller): "controller"}
    assert needs(graph, gadget) == {served_node("example.org"): "crd"}


# --- webhooks --------------------------------------------------------------------------------


def webhook_release(**selectors: Obj) -> dict[str, Obj]:
    """A webhook server (Deployment, Service, Certificate) validating Widgets, and objects around it."""
    objs = {
        "ns": namespace("hooks"), "apps": namespace("apps", team="blue"),
        "crd": crd("example.org", "Widget", "widgets"),
        "server": deployment("hook", "hooks", pod_labels={"app": "hook"}),
        "bystander": deployment("bystander", "hooks", pod_labels={"app": "other"}),
        "service": service("hook-svc", "hooks", {"app": "hook"}),
        "cert": obj("cert-manager.io/v1", "Certificate", "hook-cert", "hooks", spec={"secretName": "hook-tls"}),
        "config": webhook_config("widgets", [rule(["example.org"], ["widgets"])],
                                 annotations={"cert-manager.io/inject-ca-from": "hooks/hook-cert"}),
        "widget": obj("example.org/v1", "Widget", "w", "apps", labels={"size": "big"}),
        "other": obj("example.org/v1", "Widget", "w2", "hooks"),
        "cm": obj("v1", "ConfigMap", "c", "apps"),
    }
    objs["config"]["webhooks"][0].update(selectors)
    return objs


def test_webhook_rule_an_intercepted_object_waits_for_its_servers_gate() -> None:
    o = webhook_release()
    graph = derive(list(o.values()))
    gate_node = GATE_PREFIX + "hooks/hook-svc"
    assert list(graph.gates) == [gate_node]
    gate = graph.gates[gate_node]
    assert gate.server == "hooks/hook-svc" and gate.webhooks == (key(o["config"]),)
    assert [p["metadata"]["name"] for p in gate.probes] == ["w", "w2"]
    assert graph.needs[gate_node] == {key(o["config"]): "webhook", key(o["apps"]): "namespace",
                                      served_node("example.org"): "crd", key(o["ns"]): "namespace"}
    assert needs(graph, o["config"]) == {key(o["service"]): "webhook-server", key(o["server"]): "webhook-server",
                                         key(o["cert"]): "webhook-server"}
    assert needs(graph, o["widget"])[gate_node] == "webhook"
    assert gate_node not in needs(graph, o["cm"])
    # What serving the webhook takes never waits for the webhook.
    assert graph.reachable(key(o["server"])).isdisjoint({gate_node, key(o["config"])})
    order = graph.order()
    assert order.index(key(o["server"])) < order.index(key(o["config"])) < order.index(gate_node) \
        < order.index(key(o["widget"]))


@pytest.mark.parametrize("selectors,intercepted", [
    ({"namespaceSelector": {"matchLabels": {"team": "blue"}}}, ["w"]),
    ({"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                                  "values": ["hooks"]}]}}, ["w2"]),
    ({"objectSelector": {"matchLabels": {"size": "big"}}}, ["w"]),
    ({"objectSelector": {"matchLabels": {"size": "small"}}}, []),
], ids=["namespace-labels", "namespace-name", "object-labels", "nothing"])
def test_webhook_rule_honours_namespace_and_object_selectors(selectors: Obj, intercepted: list[str]) -> None:
    o = webhook_release(**selectors)
    graph = derive(list(o.values()))
    gated = sorted(ob["metadata"]["name"] for ob in o.values()
                   if GATE_PREFIX + "hooks/hook-svc" in graph.needs.get(key(ob), {}))
    assert gated == intercepted
    assert bool(graph.gates) == bool(intercepted)


def test_webhook_rule_operations_scope_and_secrets() -> None:
    o = webhook_release()
    o["config"]["webhooks"][0]["rules"] = [rule([""], ["secrets", "configmaps"], ["UPDATE"]),
                                          {**rule([""], ["secrets"]), "scope": "Cluster"}]
    assert derive(list(o.values())).gates == {}  # updates only, and namespaced Secrets are not cluster-scoped
    o["config"]["webhooks"][0]["rules"] = [rule([""], ["*"])]
    o["secret"] = obj("v1", "Secret", "s", "apps")
    graph = derive(list(o.values()))
    gate = graph.gates[GATE_PREFIX + "hooks/hook-svc"]
    assert GATE_PREFIX + "hooks/hook-svc" in needs(graph, o["secret"])  # gated ...
    assert all(p["kind"] != "Secret" for p in gate.probes)  # ... but never probed: its data would be in the state
    assert key(o["service"]) not in {key(p) for p in gate.probes}  # the webhook's own Service is not held back


def test_gate_probes_one_of_each_kind_first_and_at_most_the_limit() -> None:
    o = webhook_release()
    o["config"]["webhooks"][0]["rules"] = [rule(["example.org", ""], ["widgets", "configmaps"])]
    many = [obj("v1", "ConfigMap", f"c{i}", "apps") for i in range(PROBE_LIMIT + 10)]
    graph = derive([*o.values(), *many])
    probes = graph.gates[GATE_PREFIX + "hooks/hook-svc"].probes
    assert len(probes) == PROBE_LIMIT
    assert {p["kind"] for p in probes[:2]} == {"Widget", "ConfigMap"}


def test_pods_a_webhook_intercepts_wait_for_its_configuration_not_a_gate() -> None:
    o = webhook_release()
    o["config"]["kind"] = "MutatingWebhookConfiguration"
    o["config"]["webhooks"][0]["rules"] = [rule([""], ["pods"])]
    o["config"]["webhooks"][0]["objectSelector"] = {"matchLabels": {"inject": "true"}}
    injected = deployment("app", "apps", pod_labels={"app": "x", "inject": "true"})
    plain = deployment("plain", "apps")
    graph = derive([*o.values(), injected, plain])
    assert graph.gates == {}
    assert needs(graph, injected)[key(o["config"])] == "webhook"
    assert key(o["config"]) not in needs(graph, plain)


def istio_release(**injection: str) -> list[Obj]:
    istio = {"app.kubernetes.io/part-of": "istio"}
    return [
        namespace("istio-system", **{"istio-injection": "disabled"}), namespace("apps", **injection),
        deployment("istiod", "istio-system", pod_labels={"app": "istiod", "sidecar.istio.io/inject": "false"},
                   labels=istio),
        service("istiod", "istio-system", {"app": "istiod"}),
        obj("apps/v1", "DaemonSet", "istio-cni-node", "kube-system", labels=istio, spec={"template": {
            "metadata": {"labels": {"k8s-app": "istio-cni-node", "sidecar.istio.io/inject": "false"}},
            "spec": {"containers": []}}}),
        webhook_config("istio-sidecar-injector", [rule([""], ["pods"])], ("istio-system", "istiod"),
                       kind="MutatingWebhookConfiguration", labels=istio,
                       namespaceSelector={"matchExpressions": [{"key": "istio-injection", "operator": "In",
                                                                "values": ["enabled"]}]},
                       objectSelector={"matchExpressions": [{"key": "sidecar.istio.io/inject", "operator": "NotIn",
                                                             "values": ["false"]}]}),
        deployment("app", "apps"),
        deployment("opted-out", "apps", pod_labels={"app": "o", "sidecar.istio.io/inject": "false"}),
    ]


def test_istio_cni_rule_injected_workloads_wait_for_the_node_agent_and_the_injector() -> None:
    objs = istio_release(**{"istio-injection": "enabled"})
    graph = derive(objs)
    app, opted_out, istiod, cni = (object_key(o) for o in (objs[6], objs[7], objs[2], objs[4]))
    injector = object_key(objs[5])
    assert graph.needs[app] == {object_key(objs[1]): "namespace", injector: "webhook", cni: "istio-cni"}
    assert istiod in graph.reachable(app)
    assert cni not in graph.needs[opted_out] and injector not in graph.needs[opted_out]
    assert injector not in graph.reachable(istiod) and injector not in graph.reachable(cni)
    assert cni not in derive(istio_release()).needs[app]  # a namespace without injection: no sidecar, no CNI


# --- the graph as a whole --------------------------------------------------------------------


def test_order_puts_needs_first_and_keeps_the_render_order_otherwise() -> None:
    a, b = obj("v1", "ConfigMap", "b", "x"), obj("v1", "ConfigMap", "a", "x")
    ns = namespace("x")
    graph = derive([a, b, ns])
    assert graph.order() == [key(ns), key(a), key(b)]


def test_a_cycle_is_refused_naming_the_loop_and_its_rules() -> None:
    """Two webhook servers whose pods each other's webhook intercepts: no order can apply them
    (on a cluster, neither server's pods could be created while the other is not served)."""
    objs = []
    for mine, other in (("a", "b"), ("b", "a")):
        objs += [namespace(mine), deployment("hook", mine, pod_labels={"app": "hook", "team": mine}),
                 service("hook-svc", mine, {"app": "hook"}),
                 webhook_config(f"pods-{mine}", [rule([""], ["pods"])], (mine, "hook-svc"),
                                kind="MutatingWebhookConfiguration",
                                objectSelector={"matchLabels": {"team": other}})]
    graph = derive(objs)
    with pytest.raises(DependencyCycle, match=r"form a cycle: .*\(webhook\).*\(webhook-server\)"):
        graph.order()


def test_edges_stay_linear_with_many_objects_behind_one_webhook() -> None:
    """The fan-out that once made a 20 MB state (every object of a phase times every object of the
    next) must not come back: here 300 intercepted objects and 100 workloads cost a few edges each."""
    o = webhook_release()
    o["config"]["webhooks"][0]["rules"] = [rule(["example.org", ""], ["widgets", "configmaps"])]
    widgets = [obj("example.org/v1", "Widget", f"w{i}", "apps") for i in range(200)]
    maps = [obj("v1", "ConfigMap", f"c{i}", "apps") for i in range(100)]
    apps = [deployment(f"d{i}", "apps", {"volumes": [{"name": "c", "configMap": {"name": f"c{i}"}}]})
            for i in range(100)]
    objs = [*o.values(), *widgets, *maps, *apps]
    graph = derive(objs)
    print(f"{len(objs)} objects, {graph.edge_count()} edges")
    assert graph.edge_count() <= 4 * len(objs)
    assert all(len(deps) <= 4 for deps in graph.needs.values())
