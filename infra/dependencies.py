"""What each rendered object needs before it is applied, derived from the objects themselves.

The apply (infra/apply.py) used to go in phases, every object of a phase waiting for every object
of the phase before: a Deployment waited for all CRDs to be established and for every other
component's workloads, although it needs only a few objects. Here each object depends on what it
names or what acts on it, and Pulumi's own awaits keep "depends on" meaning "is ready":

- namespace: a namespaced object needs its Namespace.
- pod: a pod template needs the ServiceAccount, ConfigMaps, Secrets, PersistentVolumeClaims and
  PriorityClass it names (volumes, projected volumes, env, envFrom, image pull secrets).
- certificate: a pod template that mounts a Secret issued by a cert-manager Certificate needs the
  Certificate (its pods stay in ContainerCreating until the Secret exists).
- istio-cni: a workload whose pods an Istio webhook injects needs Istio's node agents (the CNI
  DaemonSet): an injected pod's `istio-validation` init container waits for the CNI plugin.
- rbac: a workload needs the (Cluster)RoleBindings that grant its ServiceAccount, each binding its
  role (a controller that starts without its rights crash-loops into back-off).
- crd: a custom resource needs its API group served; so does a workload whose roles name a CRD's
  API group (a controller watching a kind that is not served yet fails to start), each group its
  roles name (all of them for `*`). The CRDs are one resource that applies them all
  (infra/definitions.py), one node here, CRDS; each API group is one node after it, `served:<group>`,
  a resource that awaits that group's kinds in discovery. So a controller starts when its own kinds
  are served, not when the last of the release's 70 CRDs is.
- webhook: an object that a webhook intercepts (rules, scope, namespace and object selectors,
  evaluated as the API server does for a CREATE) needs that webhook server's admission gate
  (infra/admission.py), which needs the server's webhook configurations. A pod template whose pods
  a webhook intercepts needs the webhook configuration itself: pods are created by controllers,
  which retry a call that fails, where Pulumi would not.
- webhook-server: a webhook configuration needs the Service it calls, the workloads behind that
  Service (so calls are answered once it exists) and the Certificate cert-manager injects its CA
  from; its CA bundle is awaited on the configuration itself (apply.py `with_awaits`).
- issuer: a Certificate needs its Issuer or ClusterIssuer.
- storage: a claim needs its StorageClass (the default class when it names none: a claim created
  before the default class exists never gets one) and its pre-bound PersistentVolume; a volume
  needs its class.
- account: a ServiceAccount needs its image pull Secrets; a token Secret needs its ServiceAccount.
- aggregation: a ClusterRole needs the aggregated ClusterRoles that gather it, so a removal deletes
  those last (see `aggregating_roles`).
- service: a workload whose containers name a Service of the render as the host to call (an env
  value, a value its env reads from a ConfigMap, an argument: `mysql`, `minio-service.kubeflow`,
  `http://ml-pipeline:8888`) needs the workloads behind that Service, so a server does not start
  before its database and crash-loop into a back-off that outlasts it (Pipelines' API server,
  before MySQL and the object store, was available 36 s later on kind-local for that alone). An
  edge that would close a loop is left out: two servers that name each other start together.
- controller: a custom resource needs the workloads its CRD's own component labels as theirs
  (`kustomize.component`, as Kubeflow's components label CRD and controller alike), so a removal
  deletes it while its controller can still remove its finalizers (a Profile's, for one).

Every dependency is an object of the same render, or one of three kinds of aggregate node: CRDS,
one served node per CRD API group and one admission gate per webhook server (the apply then merges
the RBAC objects into a fourth, `Graph.collapse`). That keeps the edges linear in the number of
objects: each object gets a handful, never one per object of some other set (depending on a phase's component
once made every object depend on every object of the phase before, and a 20 MB state).

Everything here is a pure function of the rendered objects; the apply registers the graph's
nodes in `Graph.order()` with each node's `needs` as its `depends_on`.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.manifests.objects import group_of, object_key

Obj = dict[str, Any]

CRDS = "customresourcedefinitions"
SERVED_PREFIX = "served:"
GATE_PREFIX = "admission:"
PROBE_LIMIT = 50  # a gate probes one object of each kind first, then others, up to this many
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
WEBHOOK_KINDS = {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
# Objects the API server never sends to admission webhooks (and CRDs, which are one node here).
NOT_INTERCEPTED = WEBHOOK_KINDS | {"CustomResourceDefinition", "ValidatingAdmissionPolicy",
                                   "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy",
                                   "MutatingAdmissionPolicyBinding"}
POD_GROUPS = {"", "apps", "batch"}
CLUSTER_SCOPED_KINDS = {
    "Namespace", "Node", "PersistentVolume", "StorageClass", "PriorityClass", "RuntimeClass", "ClusterRole",
    "ClusterRoleBinding", "CustomResourceDefinition", "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration", "APIService", "CSIDriver", "IngressClass", "VolumeAttachment",
}
ISTIO_PART_LABEL = "app.kubernetes.io/part-of"
COMPONENT_LABEL = "kustomize.component"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
CA_FROM_CERTIFICATE = "cert-manager.io/inject-ca-from"
CA_FROM_SECRET = "cert-manager.io/inject-ca-from-secret"
# Plurals of built-in kinds that English's usual rule gets wrong.
IRREGULAR_PLURALS = {"Endpoints": "endpoints", "NetworkPolicy": "networkpolicies",
                     "PodSecurityPolicy": "podsecuritypolicies", "ResourceQuota": "resourcequotas"}


class DependencyCycle(ValueError):
    """The derived needs close a loop: no order can apply them (names the loop and its rules)."""


@dataclass(frozen=True)
class Gate:
    """An admission gate: waits until the API server can call one webhook server (infra/admission.py)."""

    node: str
    server: str  # "namespace/service" or the webhook's URL
    webhooks: tuple[str, ...]  # keys of the webhook configurations that call this server
    probes: tuple[Obj, ...]  # objects it intercepts, dry-run created by the gate


@dataclass
class Graph:
    """Nodes (object keys, CRDS, served groups, gates) and what each needs: {node: {dependency: rule}}."""

    objects: dict[str, Obj]  # every object of the render but the CRDs (and sets'), by key, in render order
    crds: list[Obj]
    gates: dict[str, Gate] = field(default_factory=dict)
    needs: dict[str, dict[str, str]] = field(default_factory=dict)
    sets: dict[str, list[Obj]] = field(default_factory=dict)  # node -> objects applied as one (`collapse`)
    served: dict[str, list[Obj]] = field(default_factory=dict)  # served node -> its group's CRDs, in apply order

    def nodes(self) -> list[str]:
        return [*([CRDS] if self.crds else []), *self.served, *self.sets, *self.objects, *self.gates]

    def collapse(self, node: str, keys: Iterable[str]) -> Graph:
        """This graph with the objects `keys` as one node, `node`: it needs what they need of
        other nodes, and whatever needed one of them needs it. Edges only merge, so they stay linear.
        A loop that only the merge closes is a DependencyCycle from `order`."""
        wanted = set(keys)
        members = [key for key in self.objects if key in wanted]
        if not members:
            return self
        into = dict.fromkeys(members, node)
        needs: dict[str, dict[str, str]] = {}
        for each, deps in self.needs.items():
            merged = needs.setdefault(into.get(each, each), {})
            for dep, rule in deps.items():
                if into.get(dep, dep) != into.get(each, each):
                    merged.setdefault(into.get(dep, dep), rule)
        return Graph(objects={k: o for k, o in self.objects.items() if k not in into}, crds=self.crds,
                     gates=self.gates, needs=needs, sets={**self.sets, node: [self.objects[k] for k in members]},
                     served=self.served)

    def edge_count(self) -> int:
        return sum(len(deps) for deps in self.needs.values())

    def order(self) -> list[str]:
        """Every node after the nodes it needs; among nodes free at once, the render's order."""
        rank = {node: i for i, node in enumerate(self.nodes())}
        waiting = {node: len(self.needs.get(node, {})) for node in rank}
        dependents: dict[str, list[str]] = defaultdict(list)
        for node, deps in self.needs.items():
            for dep in deps:
                dependents[dep].append(node)
        ready = [(rank[n], n) for n, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        ordered: list[str] = []
        while ready:
            _, node = heapq.heappop(ready)
            ordered.append(node)
            for dependent in dependents[node]:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    heapq.heappush(ready, (rank[dependent], dependent))
        if len(ordered) < len(rank):
            raise DependencyCycle(self._describe_cycle(set(rank) - set(ordered)))
        return ordered

    def _describe_cycle(self, stuck: set[str]) -> str:
        node = min(stuck)
        path: list[str] = []
        while node not in path:
            path.append(node)
            node = min(d for d in self.needs[node] if d in stuck)
        loop = [*path[path.index(node):], node]
        steps = [f"{a} needs {b} ({self.needs[a][b]})" for a, b in itertools.pairwise(loop)]
        return "the derived dependencies form a cycle: " + "; ".join(steps)

    def reachable(self, node: str) -> set[str]:
        """Everything `node` waits for, directly or through other nodes."""
        return _closure(self.needs, [node])


# --- reading objects -------------------------------------------------------------------------


def namespace_of(obj: Obj) -> str:
    return obj["metadata"].get("namespace", "") or ""


def labels_of(obj: Obj) -> dict[str, str]:
    return obj["metadata"].get("labels") or {}


def is_istio_part(obj: Obj) -> bool:
    """Istio's own objects say so, wherever they live (the CNI node agent runs in kube-system)."""
    return labels_of(obj).get(ISTIO_PART_LABEL) == "istio"


def pod_template(obj: Obj) -> Obj | None:
    """The pod a workload makes (a Pod's own spec for a Pod), or None for other objects."""
    if group_of(obj) not in POD_GROUPS:
        return None
    spec = obj.get("spec") or {}
    if obj["kind"] == "Pod":
        return {"metadata": obj["metadata"], "spec": spec}
    if obj["kind"] == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    elif obj["kind"] not in WORKLOAD_KINDS | {"ReplicaSet"}:
        return None
    return spec.get("template") or None


HOST_HINTS = ("host", "addr", "endpoint", "url", "uri", "server", "service", "svc")


def named_hosts(template: Obj, config_maps: dict[str, Obj]) -> set[str]:
    """The hosts a pod template's containers are told to call: values of env variables, of the
    ConfigMap keys their env reads (`config_maps`, by name) and of `--flag=value` arguments whose
    name says host, address, URL, endpoint, server or service, and any URL; each reduced to the
    host (`http://a.b:80/x` -> `a.b`, `a:3306` -> `a`). A value under another name is a database's
    name or a type as often as a host (Katib's `DB_NAME: mysql`), so it is not read as one."""
    named: list[tuple[str, str]] = []  # (what the value is called, the value)
    for container in _containers(template.get("spec") or {}):
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("configMapKeyRef") or {}
            if "value" in env:
                named.append((env.get("name", ""), str(env["value"])))
            elif ref.get("name") in config_maps:
                data = config_maps[ref["name"]].get("data") or {}
                named.append((f"{env.get('name', '')} {ref.get('key', '')}", str(data.get(ref.get("key"), ""))))
        for source in container.get("envFrom") or []:
            data = config_maps.get((source.get("configMapRef") or {}).get("name") or "", {}).get("data") or {}
            named += [(str(key), str(value)) for key, value in data.items()]
        for arg in [*(container.get("args") or []), *(container.get("command") or [])]:
            flag, _, value = str(arg).partition("=")
            named.append((flag, value))
    hosts = set()
    for name, value in named:
        value = value.strip()
        if not (any(hint in name.lower() for hint in HOST_HINTS) or "://" in value):
            continue
        host = (value.partition("://")[2] or value).partition("/")[0].rpartition("@")[2].partition(":")[0]
        if host and all(c.isalnum() or c in "-." for c in host):
            hosts.add(host)
    return hosts


def _containers(spec: Obj) -> Iterator[Obj]:
    for field_name in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(field_name) or []


def pod_references(template: Obj) -> list[tuple[str, str]]:
    """(kind, name) of every object a pod template names, in its own namespace or cluster-wide."""
    spec = template.get("spec") or {}
    refs: list[tuple[str, str | None]] = []
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if account:
        refs.append(("ServiceAccount", account))
    if spec.get("priorityClassName"):
        refs.append(("PriorityClass", spec["priorityClassName"]))
    refs += [("Secret", s["name"]) for s in spec.get("imagePullSecrets") or [] if s.get("name")]
    for volume in spec.get("volumes") or []:
        refs += [("ConfigMap", (volume.get("configMap") or {}).get("name")),
                 ("Secret", (volume.get("secret") or {}).get("secretName")),
                 ("PersistentVolumeClaim", (volume.get("persistentVolumeClaim") or {}).get("claimName"))]
        for source in (volume.get("projected") or {}).get("sources") or []:
            refs += [("ConfigMap", (source.get("configMap") or {}).get("name")),
                     ("Secret", (source.get("secret") or {}).get("name"))]
    for container in _containers(spec):
        for source in container.get("envFrom") or []:
            refs += [("ConfigMap", (source.get("configMapRef") or {}).get("name")),
                     ("Secret", (source.get("secretRef") or {}).get("name"))]
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            refs += [("ConfigMap", (value_from.get("configMapKeyRef") or {}).get("name")),
                     ("Secret", (value_from.get("secretKeyRef") or {}).get("name"))]
    return list(dict.fromkeys([(kind, name) for kind, name in refs if name]))


def selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A label selector (matchLabels, matchExpressions) as the API server reads it; none matches all."""
    if not selector:
        return True
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if ((op == "In" and not (present and labels[key] in values))
                or (op == "NotIn" and present and labels[key] in values)
                or (op == "Exists" and not present) or (op == "DoesNotExist" and present)):
            return False
    return True


def plural_of(kind: str, crd_plurals: dict[tuple[str, str], str], group: str) -> str:
    """The resource name a webhook rule uses for a kind: the CRD's plural, else the API's usual."""
    if (group, kind) in crd_plurals:
        return crd_plurals[(group, kind)]
    if kind in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[kind]
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    return lower + ("es" if lower.endswith(("s", "x", "ch", "sh")) else "s")


@dataclass(frozen=True)
class Request:
    """A CREATE the API server would send to webhooks: what the rules and selectors see."""

    group: str
    resource: str
    namespace: str  # "" for a cluster-scoped object
    labels: dict[str, str]
    namespace_labels: dict[str, str]  # the namespace's labels (a Namespace's own for a Namespace)
    is_namespace: bool = False


def rule_matches(rule: Obj, request: Request) -> bool:
    if not {"CREATE", "*"} & set(rule.get("operations") or []):
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and request.group not in groups:
        return False
    resources = rule.get("resources") or []
    if not {"*", "*/*", request.resource} & set(resources):
        return False
    scope = rule.get("scope") or "*"
    namespaced = bool(request.namespace)
    return scope == "*" or (scope == "Namespaced") == namespaced


def hook_matches(hook: Obj, request: Request) -> bool:
    """Whether one webhook is called for the request (its namespace selector applies to namespaced
    objects and to Namespaces themselves, as in the API server)."""
    if not any(rule_matches(rule, request) for rule in hook.get("rules") or []):
        return False
    if (request.namespace or request.is_namespace) and \
            not selector_matches(hook.get("namespaceSelector"), request.namespace_labels):
        return False
    return selector_matches(hook.get("objectSelector"), request.labels)


def server_of(hook: Obj) -> str:
    """Who answers a webhook: its Service as namespace/name, else its URL."""
    config = hook.get("clientConfig") or {}
    service = config.get("service")
    if service:
        return f"{service.get('namespace', 'default')}/{service['name']}"
    return str(config.get("url", ""))


# --- the derivation --------------------------------------------------------------------------


class Index:
    """Look-ups the rules share, built once over the render."""

    def __init__(self, objects: Sequence[Obj]) -> None:
        self.crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
        self.custom_kinds = {(c["spec"]["group"], c["spec"]["names"]["kind"]): c for c in self.crds}
        self.by_name: dict[tuple[str, str, str], str] = {}  # (kind, namespace, name) -> key
        self.objects: dict[str, Obj] = {}
        for obj in objects:
            if obj["kind"] != "CustomResourceDefinition":
                key = object_key(obj)
                self.objects[key] = obj
                self.by_name[(obj["kind"], self.namespace(obj), obj["metadata"]["name"])] = key
        self.custom_groups = {group for group, _ in self.custom_kinds}
        self.plurals = {kind: c["spec"]["names"]["plural"] for kind, c in self.custom_kinds.items()}
        self.namespace_labels = {o["metadata"]["name"]: {**labels_of(o), NAMESPACE_NAME_LABEL: o["metadata"]["name"]}
                                 for o in objects if o["kind"] == "Namespace"}
        self.webhooks = [(k, o) for k, o in self.objects.items() if o["kind"] in WEBHOOK_KINDS]
        self.config_maps: dict[str, dict[str, Obj]] = defaultdict(dict)  # namespace -> name -> ConfigMap
        for obj in self.objects.values():
            if obj["kind"] == "ConfigMap" and group_of(obj) == "":
                self.config_maps[self.namespace(obj)][obj["metadata"]["name"]] = obj
        self.workloads = [(k, o) for k, o in self.objects.items() if pod_template(o) is not None]
        self.certificates = {(self.namespace(o), o["spec"]["secretName"]): k for k, o in self.objects.items()
                             if group_of(o) == "cert-manager.io" and o["kind"] == "Certificate"
                             and (o.get("spec") or {}).get("secretName")}
        self.bindings: dict[tuple[str, str], list[str]] = defaultdict(list)  # (ns, account) -> binding keys
        for key, obj in self.objects.items():
            if obj["kind"] in ("RoleBinding", "ClusterRoleBinding") and group_of(obj) == "rbac.authorization.k8s.io":
                for subject in obj.get("subjects") or []:
                    if subject.get("kind") == "ServiceAccount":
                        account = (subject.get("namespace") or self.namespace(obj), subject["name"])
                        self.bindings[account].append(key)
        self.aggregators = {o["metadata"]["name"]: o for o in self.objects.values() if is_aggregated_role(o)}

    def namespace(self, obj: Obj) -> str:
        """An object's namespace; "" for a cluster-scoped kind, whatever its metadata says (kustomize
        sets a namespace on some cluster-scoped objects, which the API server ignores)."""
        crd = self.custom_kinds.get((group_of(obj), obj["kind"]))
        if crd is not None:
            return namespace_of(obj) if crd["spec"].get("scope") != "Cluster" else ""
        return "" if obj["kind"] in CLUSTER_SCOPED_KINDS else namespace_of(obj)

    def key(self, kind: str, namespace: str, name: str) -> str | None:
        return self.by_name.get((kind, namespace, name))

    def ns_labels(self, namespace: str) -> dict[str, str]:
        return self.namespace_labels.get(namespace, {NAMESPACE_NAME_LABEL: namespace})

    def request_for(self, obj: Obj) -> Request:
        group = group_of(obj)
        ns = self.namespace(obj)
        is_ns = obj["kind"] == "Namespace" and group == ""
        return Request(group, plural_of(obj["kind"], self.plurals, group), ns, labels_of(obj),
                       self.ns_labels(obj["metadata"]["name"] if is_ns else ns), is_ns)

    def pod_request(self, obj: Obj, template: Obj) -> Request:
        ns = self.namespace(obj)
        return Request("", "pods", ns, (template.get("metadata") or {}).get("labels") or {}, self.ns_labels(ns))

    def role_rules(self, role: Obj, seen: frozenset[str] = frozenset()) -> list[Obj]:
        """A role's rules, an aggregated ClusterRole's gathered from the roles its selectors match."""
        rules = list(role.get("rules") or [])
        if is_aggregated_role(role):
            name = role["metadata"]["name"]
            for other in self.objects.values():
                if other["kind"] == "ClusterRole" and other["metadata"]["name"] not in seen | {name} \
                        and name in aggregating_roles(other, self.aggregators):
                    rules += self.role_rules(other, seen | {name})
        return rules


def is_aggregated_role(obj: Obj) -> bool:
    return obj["kind"] == "ClusterRole" and bool(obj.get("aggregationRule"))


def aggregating_roles(obj: Obj, aggregators: dict[str, Obj]) -> list[str]:
    """The aggregated ClusterRoles whose selectors gather `obj` (a ClusterRole with their labels).

    Such a role depends on them, so a removal deletes them last: deleted while the roles they gather
    still change, they are re-created at once by the aggregation controller's apply, and Pulumi's
    delete waits for a deletion it never sees (found by the upgrade test on a real API server)."""
    if obj["kind"] != "ClusterRole":
        return []
    labels = labels_of(obj)
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


Need = tuple[str | None, str]  # (dependency key or None when it is not in the render, rule)


def _namespace_needs(obj: Obj, ix: Index) -> Iterator[Need]:
    if ix.namespace(obj):
        yield ix.key("Namespace", "", ix.namespace(obj)), "namespace"


def served_node(group: str) -> str:
    """The node that stands for a CRD API group's kinds being served."""
    return SERVED_PREFIX + group


def served_group(node: str) -> str:
    """The API group of a served node."""
    return node.removeprefix(SERVED_PREFIX)


def _crd_needs(obj: Obj, ix: Index) -> Iterator[Need]:
    if (group_of(obj), obj["kind"]) in ix.custom_kinds:
        yield served_node(group_of(obj)), "crd"


def _pod_needs(obj: Obj, ix: Index) -> Iterator[Need]:
    template = pod_template(obj)
    if template is None:
        return
    ns = ix.namespace(obj)
    for kind, name in pod_references(template):
        yield ix.key(kind, "" if kind == "PriorityClass" else ns, name), "pod"
        if kind == "Secret":
            yield ix.certificates.get((ns, name)), "certificate"


def _rbac_needs(obj: Obj, ix: Index) -> Iterator[Need]:
    template = pod_template(obj)
    if template is None:
        return
    spec = template.get("spec") or {}
    account = (ix.namespace(obj), spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
    named: set[str] = set()
    for binding_key in ix.bindings.get(account, []):
        yield binding_key, "rbac"
        role = _bound_role(ix.objects[binding_key], ix)
        if role is not None:
            named |= {g for rule in ix.role_rules(ix.objects[role]) for g in rule.get("apiGroups") or []}
    for group in sorted(ix.custom_groups if "*" in named else named & ix.custom_groups):
        yield served_node(group), "crd"


def _bound_role(binding: Obj, ix: Index) -> str | None:
    ref = binding.get("roleRef") or {}
    return ix.key(ref.get("kind", ""), ix.namespace(binding) if ref.get("kind") == "Role" else "", ref.get("name", ""))


def _binding_needs(obj: Obj, ix: Index) -> Iterator[Need]:
    if obj["kind"] in ("RoleBinding", "ClusterRoleBinding") and group_of(obj) == "rbac.authorization.k8s.io":
        yield _bound_role(obj, ix), "rbac"


def _aggregation_needs(obj: Obj, ix: Index) -> Iterator[Need]:
    for name in aggregating_roles(obj, ix.aggregators):
        yield ix.key("ClusterRole", "", name), "aggregation"


def _storage_needs(obj: Obj, ix: Index) -> Iterator[Need]:
    kind, spec = obj["kind"], obj.get("spec") or {}
    if group_of(obj) == "apps" and kind == "StatefulSet":
        for claim in spec.get("volumeClaimTemplates") or []:
            yield from _class_needs((claim.get("spec") or {}), ix)
    if group_of(obj) != "":
        return
    if kind == "PersistentVolumeClaim":
        yield from _class_needs(spec, ix)
        if spec.get("volumeName"):
            yield ix.key("PersistentVolume", "", spec["volumeName"]), "storage"
        for key, other in ix.objects.items():
            ref = (other.get("spec") or {}).get("claimRef") or {} if other["kind"] == "PersistentVolume" else {}
            if ref.get("name") == obj["metadata"]["name"] and ref.get("namespace") == ix.namespace(obj):
                yield key, "storage"
    elif kind == "PersistentVolume" and spec.get("storageClassName"):
        yield ix.key("StorageClass", "", spec["storageClassName"]), "storage"


def _class_needs(claim_spec: Obj, ix: Index) -> Iterator[Need]:
    name = claim_spec.get("storageClassName")
    if name is None:
        for key, sc in ix.objects.items():
            if sc["kind"] == "StorageClass" and \
                    (sc["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
                yield key, "storage"
    elif name:
        yield ix.key("StorageClass", "", name), "storage"


def _account_needs(obj: Obj, ix: Index) -> Iterator[Need]:
    if group_of(obj) != "":
        return
    ns = ix.namespace(obj)
    if obj["kind"] == "ServiceAccount":
        for secret in obj.get("imagePullSecrets") or []:
            yield ix.key("Secret", ns, secret.get("name", "")), "account"
    elif obj["kind"] == "Secret" and obj.get("type") == "kubernetes.io/service-account-token":
        account = (obj["metadata"].get("annotations") or {}).get("kubernetes.io/service-account.name", "")
        yield ix.key("ServiceAccount", ns, account), "account"


def _issuer_needs(obj: Obj, ix: Index) -> Iterator[Need]:
    if group_of(obj) != "cert-manager.io" or obj["kind"] != "Certificate":
        return
    ref = (obj.get("spec") or {}).get("issuerRef") or {}
    if ref.get("group", "cert-manager.io") != "cert-manager.io":
        return  # an external issuer: its own kind, named nowhere we can check
    kind = ref.get("kind") or "Issuer"
    yield ix.key(kind, ix.namespace(obj) if kind == "Issuer" else "", ref.get("name", "")), "issuer"


def _controller_needs(obj: Obj, ix: Index) -> Iterator[Need]:
    crd = ix.custom_kinds.get((group_of(obj), obj["kind"]))
    component = labels_of(crd).get(COMPONENT_LABEL) if crd else None
    if component:
        for key, workload in ix.workloads:
            if labels_of(workload).get(COMPONENT_LABEL) == component:
                yield key, "controller"


def backing_workloads(service_key: str | None, ix: Index) -> list[str]:
    """The workloads whose pods a Service selects (same namespace)."""
    if service_key is None:
        return []
    service = ix.objects[service_key]
    selector = (service.get("spec") or {}).get("selector") or {}
    if not selector:
        return []
    return [key for key, workload in ix.workloads if ix.namespace(workload) == ix.namespace(service)
            and selector_matches({"matchLabels": selector},
                                 ((pod_template(workload) or {}).get("metadata") or {}).get("labels") or {})]


def _webhook_server_needs(obj: Obj, ix: Index) -> Iterator[Need]:
    if obj["kind"] not in WEBHOOK_KINDS:
        return
    for hook in obj.get("webhooks") or []:
        service = (hook.get("clientConfig") or {}).get("service")
        if service:
            service_key = ix.key("Service", service.get("namespace", "default"), service["name"])
            yield service_key, "webhook-server"
            for key in backing_workloads(service_key, ix):
                yield key, "webhook-server"
    annotations = obj["metadata"].get("annotations") or {}
    for annotation, kind in ((CA_FROM_CERTIFICATE, "Certificate"), (CA_FROM_SECRET, "Secret")):
        ns, _, name = annotations.get(annotation, "").partition("/")
        if name:
            yield ix.key(kind, ns, name), "webhook-server"


RULES = (_namespace_needs, _crd_needs, _pod_needs, _rbac_needs, _binding_needs, _aggregation_needs,
         _storage_needs, _account_needs, _issuer_needs, _controller_needs, _webhook_server_needs)


def _service_needs(obj: Obj, ix: Index) -> Iterator[Need]:
    """The workloads behind each Service of the render that `obj`'s pod template names as a host
    (`<service>`, `<service>.<namespace>`, `<service>.<namespace>.svc[.cluster.local]`)."""
    template = pod_template(obj)
    if template is None:
        return
    ns = ix.namespace(obj)
    for host in sorted(named_hosts(template, ix.config_maps.get(ns, {}))):
        parts = host.split(".")
        if len(parts) > 2 and parts[2] != "svc":
            continue  # a name outside the cluster
        for workload in backing_workloads(ix.key("Service", parts[1] if len(parts) > 1 else ns, parts[0]), ix):
            yield workload, "service"


@dataclass
class _Admission:
    """Who each webhook server's configurations intercept, and what serving it takes."""

    configs: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # server -> config keys
    intercepted: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # server -> keys
    pod_hooks: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # workload -> configs
    behind: dict[str, set[str]] = field(default_factory=dict)  # server -> what serving it needs


def _admission(ix: Index, needs: dict[str, dict[str, str]]) -> _Admission:
    adm = _Admission()
    for key, config in ix.webhooks:
        for hook in config.get("webhooks") or []:
            server = server_of(hook)
            if key not in adm.configs[server]:
                adm.configs[server].append(key)
    for server, configs in adm.configs.items():
        # What serving a webhook takes is applied before its configuration exists, so the webhook
        # never intercepts it: it never waits for the webhook (else the two would wait for each other).
        adm.behind[server] = _closure(needs, configs) | set(configs)
    for key, obj in ix.objects.items():
        if obj["kind"] in NOT_INTERCEPTED:
            continue
        request = ix.request_for(obj)
        template = pod_template(obj)
        pod_request = ix.pod_request(obj, template) if template is not None else None
        for config_key, config in ix.webhooks:
            for hook in config.get("webhooks") or []:
                server = server_of(hook)
                if key in adm.behind[server]:
                    continue
                if hook_matches(hook, request) and key not in adm.intercepted[server]:
                    adm.intercepted[server].append(key)
                if pod_request is not None and hook_matches(hook, pod_request) \
                        and config_key not in adm.pod_hooks[key]:
                    adm.pod_hooks[key].append(config_key)
    return adm


def _closure(needs: dict[str, dict[str, str]], starts: Iterable[str]) -> set[str]:
    """Every node the `starts` need, directly or through others."""
    seen: set[str] = set()
    stack = [dep for start in starts for dep in needs.get(start, {})]
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(needs.get(node, {}))
    return seen


def probes_of(objects: Iterable[Obj]) -> list[Obj]:
    """What a gate dry-run creates: one object of each kind first, then others, never a Secret
    (its data would sit in the gate's state), at most PROBE_LIMIT."""
    candidates = [o for o in objects if o["kind"] != "Secret"]
    firsts: dict[tuple[str, str], Obj] = {}
    for obj in candidates:
        firsts.setdefault((obj["apiVersion"], obj["kind"]), obj)
    rest = [o for o in candidates if all(o is not f for f in firsts.values())]
    return [*firsts.values(), *rest][:PROBE_LIMIT]


def derive(objects: Sequence[Obj]) -> Graph:
    """The dependency graph of a render (see the module docstring for each rule)."""
    ix = Index(objects)
    graph = Graph(objects=dict(ix.objects), crds=list(ix.crds))
    needs: dict[str, dict[str, str]] = {key: {} for key in ix.objects}

    def add(node: str, dep: str | None, rule: str) -> None:
        if dep is not None and dep != node:
            needs[node].setdefault(dep, rule)

    for key, obj in ix.objects.items():
        for rule_fn in RULES:
            for dep, rule in rule_fn(obj, ix):
                add(key, dep, rule)

    istio_agents = [k for k, o in ix.workloads if o["kind"] == "DaemonSet" and is_istio_part(o)]
    adm = _admission(ix, needs)
    for key, configs in adm.pod_hooks.items():
        for config_key in configs:
            add(key, config_key, "webhook")
            if is_istio_part(ix.objects[config_key]):
                for agent in istio_agents:
                    add(key, agent, "istio-cni")
    for server in sorted(adm.intercepted):
        intercepted = adm.intercepted[server]
        if not intercepted:
            continue
        probes = probes_of(ix.objects[k] for k in intercepted)
        gate = Gate(GATE_PREFIX + server, server, tuple(adm.configs[server]), tuple(probes))
        graph.gates[gate.node] = gate
        needs[gate.node] = {}
        for config_key in gate.webhooks:
            add(gate.node, config_key, "webhook")
        for probe in probes:  # a dry-run in a namespace that does not exist yet is refused before any webhook
            add(gate.node, ix.key("Namespace", "", ix.namespace(probe)), "namespace")
            if (group_of(probe), probe["kind"]) in ix.custom_kinds:
                add(gate.node, served_node(group_of(probe)), "crd")
        before_gate = _closure(needs, [gate.node])  # a Namespace the gate's probes need is not held back by it
        for key in intercepted:
            if key not in before_gate:
                add(key, gate.node, "webhook")
    for key, workload in ix.workloads:  # last, each only where it closes no loop
        for dep, rule in _service_needs(workload, ix):
            if dep is not None and dep != key and key not in _closure(needs, [dep]):
                add(key, dep, rule)
    for group in ix.custom_groups:
        needs[served_node(group)] = {CRDS: "crd"}
    order = served_order(needs, [served_node(g) for g in ix.custom_groups], [k for k, _ in ix.workloads])
    graph.served = {node: [c for c in ix.crds if served_node(c["spec"]["group"]) == node] for node in order}
    graph.needs = needs
    return graph


def served_order(needs: dict[str, dict[str, str]], served: Iterable[str], workloads: Iterable[str]) -> list[str]:
    """The order to apply the CRDs' API groups in: each time, the group that lets the most
    workloads start (those waiting, directly or through others, for that group and groups already
    chosen), then the group the most waiting workloads need. The API server establishes CRDs in
    about the order they come, one after another over several seconds, and a workload's rollout
    (the long part of a controller's path) starts only when its last group is served."""
    left = set(served)
    wants = [_closure(needs, [w]) & left for w in workloads]
    wants = [groups for groups in wants if groups]
    chosen: set[str] = set()
    order: list[str] = []

    def score(node: str) -> tuple[int, int, str]:
        started = sum(1 for groups in wants if node in groups and groups <= chosen | {node})
        waiting = sum(1 for groups in wants if node in groups and not groups <= chosen)
        return (-started, -waiting, node)

    while left:
        best = min(left, key=score)
        order.append(best)
        chosen.add(best)
        left.remove(best)
    return order
