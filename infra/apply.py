"""Ordered apply: rendered objects become Pulumi resources in explicit phases, not retry loops.

Each phase ends in a barrier resource that depends on every object of the phase; every object of
the next phase depends on that barrier, and Pulumi's own awaits (CRDs established, Deployments
available, ...) make "depends on" mean "is ready". The phases follow what the objects need from each other:

1. base: namespaces, storage classes and static volumes. A claim whose pre-bound volume does not
   exist yet stays Pending until the volume binder's next resync (15 s by default).
2. foundation: accounts, RBAC, config, secrets, services, storage (no webhooks, no custom
   resources); and the CRDs, as one resource that waits until all are established
   (infra/definitions.py says why they are not one resource each). CRDs need only the cluster, so
   they are applied from the start, beside the namespaces; the foundation's barrier waits for them.
3. cert-manager: its workloads and webhooks; its webhook's CA bundle is awaited.
4. certificates: Issuers and Certificates, which need cert-manager's webhook, and which other
   components' workloads need (their webhook serving certs).
5. istio: every part of Istio (istiod, gateways, the sidecar injector, and the CNI node agent in
   kube-system), before any pod that wants a sidecar: with CNI enabled, as upstream installs it,
   an injected pod's `istio-validation` init container waits until the CNI plugin is on the node.
6. platform: Dex, Knative serving and storage provisioners (oauth2-proxy needs Dex; KServe needs
   Knative).
7. applications: every other workload.
8. webhooks: the remaining webhook configurations, once the services behind them answer.
9. resources: instances of custom resources (gateways, policies, runtimes, profiles, ...).

A phase whose objects earlier webhooks intercept starts after an admission gate, which waits until
the API server can call those webhooks (infra/admission.py says why the barrier is not enough).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider

from infra.admission import AdmissionGate, probes_for
from infra.definitions import FIELD_MANAGER, CustomResourceDefinitions
from infra.manifests.objects import Obj, group_of

PHASES = ("base", "foundation", "cert-manager", "certificates", "istio", "platform", "applications",
          "webhooks", "resources")
BASE_KINDS = {"Namespace", "StorageClass", "PersistentVolume"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
WEBHOOK_KINDS = {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
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
FIELD_MANAGER_ANNOTATION = "pulumi.com/patchFieldManager"


ISTIO_PART_LABEL = "app.kubernetes.io/part-of"


def is_istio_part(obj: Obj) -> bool:
    """Istio's own objects say so, wherever they live (the CNI node agent runs in kube-system)."""
    return (obj["metadata"].get("labels") or {}).get(ISTIO_PART_LABEL) == "istio"


def phase_of(obj: Obj) -> str:
    """Which phase an object belongs to (a pure function, tested without Pulumi)."""
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


def is_aggregated_role(obj: Obj) -> bool:
    return obj["kind"] == "ClusterRole" and bool(obj.get("aggregationRule"))


def aggregating_roles(obj: Obj, aggregators: dict[str, Obj]) -> list[str]:
    """The aggregated ClusterRoles whose selectors gather `obj` (a ClusterRole with their labels)."""
    if obj["kind"] != "ClusterRole":
        return []
    labels = obj["metadata"].get("labels") or {}
    found = []
    for name, role in aggregators.items():
        if name == obj["metadata"]["name"]:
            continue
        for selector in role["aggregationRule"].get("clusterRoleSelectors") or []:
            wanted = selector.get("matchLabels") or {}
            if wanted and all(labels.get(k) == v for k, v in wanted.items()):
                found.append(name)
                break
    return sorted(found)


def roles_first(objs: Sequence[Obj], aggregators: dict[str, Obj]) -> list[Obj]:
    """Aggregated ClusterRoles first, each after the aggregated roles that gather it; then the rest."""
    ordered: list[Obj] = []
    placed: set[str] = set()
    pending = [o for o in objs if is_aggregated_role(o)]
    while pending:
        ready = [o for o in pending if set(aggregating_roles(o, aggregators)) <= placed] or pending[:1]
        for o in ready:
            ordered.append(o)
            placed.add(o["metadata"]["name"])
        pending = [o for o in pending if o["metadata"]["name"] not in placed]
    return ordered + [o for o in objs if not is_aggregated_role(o)]


def group_by_phase(objects: Sequence[Obj]) -> dict[str, list[Obj]]:
    phases: dict[str, list[Obj]] = {p: [] for p in PHASES}
    for obj in objects:
        phases[phase_of(obj)].append(obj)
    return phases


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
    """Tune Pulumi's awaits to the phase design.

    A webhook configuration is awaited until every webhook in it has its CA (`ca_bundle_awaits`),
    so later phases never call a webhook clients cannot trust. A Service is not awaited: Pulumi
    would wait for pods behind it, and pods come in later phases; their readiness is awaited there.
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


class _BarrierProvider(ResourceProvider):
    """Creates nothing: a phase barrier only exists to be depended on."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(f"phase-{props['phase']}", {"phase": props["phase"]})

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=olds.get("phase") != news.get("phase"))


class PhaseBarrier(Resource):
    """One resource that depends on every object of a phase, so the next phase depends on it alone.

    Depending on a component would copy all of its children into every object's dependency list:
    O(n^2) edges, a state file of tens of MB, and an engine that crawls.
    """

    def __init__(self, name: str, phase: str, members: Sequence[pulumi.Resource],
                 opts: pulumi.ResourceOptions) -> None:
        super().__init__(_BarrierProvider(), name, {"phase": phase},
                         pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(members))))


@dataclass(frozen=True)
class KubeflowArgs:
    objects: Sequence[Obj]
    provider: pulumi.ProviderResource
    kubeconfig: pulumi.Input[str]
    context: str | None = None
    deleted_with: pulumi.Resource | None = None  # see Cluster.deleted_with
    create_timeout: str = "15m"


class KubeflowDeployment(pulumi.ComponentResource):
    """The rendered objects of a Kubeflow release, applied phase by phase.

    Every object is a direct child of this component, so its URN does not depend on its phase:
    moving an object to another phase in a later version changes its dependencies, never its
    identity (a new URN would mean create-then-delete of the same cluster object).
    """

    def __init__(self, name: str, args: KubeflowArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kubeflow-stacks:kubeflow:KubeflowDeployment", name, None, opts)
        self.phases: dict[str, list[KubeObject]] = {}
        self.barriers: dict[str, PhaseBarrier] = {}
        self.gates: dict[str, pulumi.Resource] = {}  # phase -> its admission gate (infra/admission.py)
        self.definitions: CustomResourceDefinitions | None = None
        previous: pulumi.Resource | None = None
        earlier_webhooks: list[Obj] = []
        for phase, objs in group_by_phase(args.objects).items():
            if not objs:
                continue
            probes = probes_for(objs, earlier_webhooks, args.objects) if earlier_webhooks else []
            if probes and previous is not None:
                previous = AdmissionGate(f"{name}-{phase}-admission", phase, probes, args.kubeconfig, args.context,
                                         pulumi.ResourceOptions(parent=self, depends_on=[previous],
                                                                deleted_with=args.deleted_with))
                self.gates[phase] = previous
            earlier_webhooks += [o for o in objs if o["kind"] in WEBHOOK_KINDS]
            after = [previous] if previous else []
            child_opts = pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=after, delete_before_replace=True,
                deleted_with=args.deleted_with,
                custom_timeouts=pulumi.CustomTimeouts(create=args.create_timeout, update=args.create_timeout))
            members_in_order: list[KubeObject] = []
            crds = [o for o in objs if o["kind"] == "CustomResourceDefinition"]
            objs = [o for o in objs if o["kind"] != "CustomResourceDefinition"]
            # Aggregated ClusterRoles go first, and the roles they gather depend on them, so a
            # removal deletes them last: deleted while the roles they gather still change, they
            # are re-created at once by the aggregation controller's apply, and Pulumi's delete
            # waits for a deletion it never sees (found by the upgrade test on a real API server).
            aggregators = {o["metadata"]["name"]: o for o in objs if is_aggregated_role(o)}
            made: dict[str, KubeObject] = {}
            for o in roles_first(objs, aggregators):
                after_roles = [made[n] for n in aggregating_roles(o, aggregators) if n in made]
                opts = (pulumi.ResourceOptions.merge(child_opts, pulumi.ResourceOptions(depends_on=after_roles))
                        if after_roles else child_opts)
                made_obj = KubeObject(resource_name(o), with_field_manager(with_awaits(o)), opts)
                if is_aggregated_role(o):
                    made[o["metadata"]["name"]] = made_obj
                members_in_order.append(made_obj)
            members: list[pulumi.Resource] = list(members_in_order)
            if crds:
                # CRDs need nothing but the cluster (their kubeconfig input): applied from the start,
                # while namespaces and the rest of the foundation go in; the foundation's barrier waits for them.
                self.definitions = CustomResourceDefinitions(
                    f"{name}-crds", crds, args.kubeconfig, args.context,
                    pulumi.ResourceOptions(parent=self, deleted_with=args.deleted_with))
                members.append(self.definitions)
            barrier = PhaseBarrier(f"{name}-{phase}", phase, members, pulumi.ResourceOptions(parent=self))
            self.phases[phase] = [m for m in members if isinstance(m, KubeObject)]
            self.barriers[phase] = previous = barrier
        self.register_outputs({"objectCount": len(args.objects), "phases": list(self.phases)})
