"""Ordered apply: rendered objects become Pulumi resources, each after exactly what it needs.

infra/dependencies.py derives what each object needs from the objects themselves (its namespace,
what its pods name, its CRD, the webhooks that intercept it, ...); each object is registered with
those as its `depends_on`, and Pulumi's own awaits (CRDs established, Deployments available, a
webhook's CA injected, ...) make "depends on" mean "is ready". There are no phases: a Deployment
starts once its own account, config and webhooks are there, not when every object of an earlier
phase is. Where webhooks intercept an object, it also waits for an admission gate, which waits
until the API server can call them (infra/admission.py says why the configuration's await is not
enough).

`PHASES` and `phase_of` below order nothing any more: they name the part of a release an object
belongs to, which the bench and conformance reports group their timelines by.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from infra.admission import AdmissionGate
from infra.definitions import CustomResourceDefinitions, ServedGroup
from infra.dependencies import CRDS, WEBHOOK_KINDS, WORKLOAD_KINDS, Graph, derive, is_istio_part, served_group
from infra.manifests.objects import Obj, group_of
from infra.object_set import RBAC_SET, ObjectSet, in_rbac_set
from infra.server_apply import FIELD_MANAGER, FIELD_MANAGER_ANNOTATION

PHASES = ("base", "foundation", "cert-manager", "certificates", "istio", "platform", "applications",
          "webhooks", "resources")
BASE_KINDS = {"Namespace", "StorageClass", "PersistentVolume"}
PLATFORM_NAMESPACES = {"auth", "knative-serving", "kubeflow-storage"}
# Built-in API groups; an object of any other group is an instance of a CRD.
BUILTIN_GROUPS = {
    "", "apps", "batch", "rbac.authorization.k8s.io", "policy", "autoscaling", "networking.k8s.io",
    "storage.k8s.io", "scheduling.k8s.io", "admissionregistration.k8s.io", "apiextensions.k8s.io",
    "coordination.k8s.io", "discovery.k8s.io", "node.k8s.io", "apiregistration.k8s.io",
    "certificates.k8s.io", "flowcontrol.apiserver.k8s.io",
}
WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"
SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait"
DEPLOYMENT_TYPE = "kubeflow-stacks:kubeflow:KubeflowDeployment"


def phase_of(obj: Obj) -> str:
    """The part of a release an object belongs to, for reports (a pure function; it orders nothing)."""
    kind, group = obj["kind"], group_of(obj)
    ns = obj["metadata"].get("namespace", "")
    name = obj["metadata"]["name"]
    if kind in BASE_KINDS:
        return "base"
    if kind == "CustomResourceDefinition":
        return "foundation"
    if group == "cert-manager.io":
        return "certificates"
    if group not in BUILTIN_GROUPS:
        return "resources"
    if kind in WEBHOOK_KINDS:
        if name.startswith("cert-manager"):
            return "cert-manager"
        if name.startswith("istio") or is_istio_part(obj):
            return "istio"
        return "webhooks"
    if kind in WORKLOAD_KINDS:
        if ns == "cert-manager":
            return "cert-manager"
        if ns == "istio-system" or is_istio_part(obj):
            return "istio"
        if ns in PLATFORM_NAMESPACES:
            return "platform"
        return "applications"
    return "foundation"


def resource_name(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


def type_token(obj: Obj) -> str:
    """Pulumi's type for a Kubernetes object: kubernetes:<group>/<version>:<Kind>."""
    api = obj["apiVersion"]
    return f"kubernetes:{api if '/' in api else 'core/' + api}:{obj['kind']}"


def _annotated(obj: Obj, key: str, value: str) -> Obj:
    annotations = obj["metadata"].get("annotations") or {}
    return {**obj, "metadata": {**obj["metadata"], "annotations": {**annotations, key: value}}}


def ca_bundle_awaits(obj: Obj) -> list[str]:
    """One condition per webhook whose CA bundle someone else fills in.

    Whoever injects it (cert-manager from a Certificate or from a Secret, istiod, Knative's or the
    trainer's own controller), a webhook without a CA in the render fails every call ("x509:
    certificate signed by unknown authority") until it is there, and pulumi-kubernetes retries a
    failed create only for NotFound. Empty bundles are dropped by the normalize patch, so a
    condition is met only by a real, injected CA.
    """
    if obj["kind"] not in WEBHOOK_KINDS:
        return []
    return [f"jsonpath={{.webhooks[{i}].clientConfig.caBundle}}"
            for i, hook in enumerate(obj.get("webhooks") or [])
            if not (hook.get("clientConfig") or {}).get("caBundle")]


def with_awaits(obj: Obj) -> Obj:
    """Tune Pulumi's awaits to what depends on them.

    A webhook configuration is awaited until every webhook in it has its CA (`ca_bundle_awaits`),
    so nothing that depends on it calls a webhook clients cannot trust. A Service is not awaited:
    Pulumi would wait for the pods behind it, which nothing needs from the Service itself (a
    webhook configuration depends on the workloads behind its Service, awaited available).
    """
    conditions = ca_bundle_awaits(obj)
    if conditions:
        value = conditions[0] if len(conditions) == 1 else json.dumps(conditions)
        return _annotated(obj, WAIT_FOR_ANNOTATION, value)
    if obj["kind"] == "Service" and group_of(obj) == "":
        return _annotated(obj, SKIP_AWAIT_ANNOTATION, "true")
    return obj


def with_field_manager(obj: Obj) -> Obj:
    """Apply every object as one stable field manager, `kubeflow-stacks`.

    The provider otherwise names a random manager per resource and keeps the name in the state. An
    update interrupted before its state was saved then re-creates (adopts) objects under a new
    name, the old name keeps co-owning their fields, and the next change of such a field fails as
    a server-side apply conflict. (T2's interrupted-update test found this for static volumes.)
    """
    return _annotated(obj, FIELD_MANAGER_ANNOTATION, FIELD_MANAGER)


class KubeObject(pulumi.CustomResource):
    """Any Kubernetes object, applied by the Kubernetes provider as its own typed resource."""

    def __init__(self, name: str, obj: Obj, opts: pulumi.ResourceOptions | None = None) -> None:
        self.obj = obj
        props: dict[str, Any] = dict(obj)
        if obj["kind"] == "Secret":
            for field in ("data", "stringData"):
                if field in props:
                    props[field] = pulumi.Output.secret(props[field])
        super().__init__(type_token(obj), name, props, opts)

    @property
    def string_data(self) -> pulumi.Output[Any]:
        """A Secret's stringData as registered (secret), for checks of what the engine was given."""
        return self.__dict__["stringData"]


@dataclass(frozen=True)
class KubeflowArgs:
    objects: Sequence[Obj]
    provider: pulumi.ProviderResource
    kubeconfig: pulumi.Input[str]
    context: str | None = None
    deleted_with: pulumi.Resource | None = None  # see Cluster.deleted_with
    create_timeout: str = "15m"


class KubeflowDeployment(pulumi.ComponentResource):
    """The rendered objects of a Kubeflow release, each applied after what it needs.

    Every object is a direct child of this component, so its URN does not depend on what it
    needs: a later version that changes an object's dependencies never changes its identity (a new
    URN would mean create-then-delete of the same cluster object). Resources are registered in the
    graph's order, so each one's dependencies exist when it is registered; the engine then runs
    every resource as soon as those are done.
    """

    def __init__(self, name: str, args: KubeflowArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(DEPLOYMENT_TYPE, name, None, opts)
        self.graph: Graph = apply_graph(args.objects)
        self.objects: dict[str, KubeObject] = {}  # object key -> resource
        self.gates: dict[str, AdmissionGate] = {}  # webhook server -> its admission gate (infra/admission.py)
        self.definitions: CustomResourceDefinitions | None = None
        self.served: dict[str, ServedGroup] = {}  # served node -> the resource awaiting its API group
        self.rbac: ObjectSet | None = None
        object_opts = pulumi.ResourceOptions(
            parent=self, provider=args.provider, delete_before_replace=True, deleted_with=args.deleted_with,
            custom_timeouts=pulumi.CustomTimeouts(create=args.create_timeout, update=args.create_timeout))
        made: dict[str, pulumi.Resource] = {}
        for node in self.graph.order():
            after = pulumi.ResourceOptions(depends_on=[made[dep] for dep in self.graph.needs.get(node, {})])
            if node == CRDS:
                # CRDs need nothing but the cluster (their kubeconfig input): applied from the start.
                made[node] = self.definitions = CustomResourceDefinitions(
                    node_resource_name(node, self.graph, name), self.graph.crds, args.kubeconfig, args.context,
                    pulumi.ResourceOptions(parent=self, deleted_with=args.deleted_with),
                    groups=[served_group(node) for node in self.graph.served])
            elif node in self.graph.served:
                made[node] = self.served[node] = ServedGroup(
                    node_resource_name(node, self.graph, name), self.graph.served[node], args.kubeconfig,
                    args.context, pulumi.ResourceOptions.merge(
                        pulumi.ResourceOptions(parent=self, deleted_with=args.deleted_with), after))
            elif node == RBAC_SET:
                made[node] = self.rbac = ObjectSet(
                    node_resource_name(node, self.graph, name), self.graph.sets[node], args.kubeconfig, args.context,
                    pulumi.ResourceOptions.merge(
                        pulumi.ResourceOptions(parent=self, deleted_with=args.deleted_with), after))
            elif node in self.graph.gates:
                gate = self.graph.gates[node]
                made[node] = self.gates[gate.server] = AdmissionGate(
                    node_resource_name(node, self.graph, name), gate.server, gate.probes, args.kubeconfig,
                    args.context, pulumi.ResourceOptions.merge(
                        pulumi.ResourceOptions(parent=self, deleted_with=args.deleted_with), after))
            else:
                obj = self.graph.objects[node]
                made[node] = self.objects[node] = KubeObject(
                    resource_name(obj), with_field_manager(with_awaits(obj)),
                    pulumi.ResourceOptions.merge(object_opts, after))
        self.register_outputs({"objectCount": len(args.objects), "dependencyCount": self.graph.edge_count()})


def apply_graph(objects: Sequence[Obj]) -> Graph:
    """What the apply registers: the derived graph, with the RBAC objects as one node (the
    resource infra/object_set.py applies; every workload that needed one of them needs it)."""
    graph = derive(objects)
    return graph.collapse(RBAC_SET, [key for key, obj in graph.objects.items() if in_rbac_set(obj)])


def node_resource_name(node: str, graph: Graph, name: str = "kubeflow") -> str:
    """The Pulumi name of a graph node's resource, as KubeflowDeployment `name` registers it."""
    if node == CRDS:
        return f"{name}-crds"
    if node in graph.served:
        return f"{name}-crds-{served_group(node)}"
    if node == RBAC_SET:
        return f"{name}-rbac"
    if node in graph.gates:
        return f"{name}-admission-{gate_slug(graph.gates[node].server)}"
    return resource_name(graph.objects[node])


def gate_slug(server: str) -> str:
    """A webhook server ("namespace/service" or a URL) as part of a resource name."""
    slug = "".join(c if c.isalnum() or c == "-" else "-" for c in server.lower())
    return "-".join(part for part in slug.split("-") if part)
