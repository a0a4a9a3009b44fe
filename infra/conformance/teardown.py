"""What a teardown must leave: no cluster the stack made, or, on a cluster the stack does not own,
none of its namespaces, webhook configurations, CRDs or other cluster-scoped objects.

The list of what to look for is taken from the stack's state before `pulumi destroy` runs (what
Pulumi created), plus the profile namespaces that Kubeflow's profile controller made for the
stack's profiles; after the destroy each is looked up on the cluster.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import LOCAL_PROVIDERS, ExistingClusterConfig, cluster_config

# Cluster lifecycles the project owns: `pulumi destroy` deletes the cluster itself.
OWNED_CLUSTERS = LOCAL_PROVIDERS
GONE_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class ObjectRef:
    """An object to look for after the teardown."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


@dataclass
class TeardownPlan:
    """Taken before the destroy: which cluster, and which objects."""

    provider: str
    cluster_name: str
    kubeconfig: str | None
    objects: list[ObjectRef] = field(default_factory=list)


def _type_parts(type_token: str) -> tuple[str, str] | None:
    """kubernetes:apps/v1:Deployment -> ("apps/v1", "Deployment"); core/v1 -> v1."""
    if not type_token.startswith("kubernetes:") or type_token.startswith("kubernetes:index"):
        return None
    _, api, kind = type_token.split(":", 2)
    return (api.removeprefix("core/"), kind)


def crd_digests(res: dict[str, Any]) -> dict[str, str] | None:
    """The CRD bundle's {name: digest} (infra/definitions.py), or None for any other resource."""
    digests = (res.get("outputs") or {}).get("digests")
    if res.get("type", "").startswith("pulumi-python:dynamic") and isinstance(digests, dict):
        return digests
    return None


def objects_to_check(resources: Iterable[dict[str, Any]], profiles: Sequence[str] = ()) -> list[ObjectRef]:
    """From a state export's resources: every CRD, namespace, and cluster-scoped object; namespaced
    objects only outside the stack's own namespaces (those go with their namespace)."""
    refs: list[ObjectRef] = []
    for res in resources:
        outputs = res.get("outputs") or {}
        digests = crd_digests(res)
        if digests is not None:
            refs += [ObjectRef("apiextensions.k8s.io/v1", "CustomResourceDefinition", n) for n in sorted(digests)]
            continue
        parts = _type_parts(res.get("type", ""))
        meta = outputs.get("metadata") or {}
        if parts is None or "name" not in meta:
            continue
        refs.append(ObjectRef(parts[0], parts[1], meta["name"], meta.get("namespace") or None))
    refs += [ObjectRef("v1", "Namespace", p) for p in profiles]
    namespaces = {r.name for r in refs if r.kind == "Namespace"}
    unique = {r: None for r in refs if r.namespace is None or r.namespace not in namespaces}
    return list(unique)


def plan_from_state(deployment: dict[str, Any], config: dict[str, Any], outputs: dict[str, Any]) -> TeardownPlan:
    """A plan from `pulumi stack export`'s deployment, the stack's config and its outputs (the
    cluster section read by the config's model, its defaults included)."""
    cluster = cluster_config(config.get("cluster"))
    profiles = [p for p in outputs.get("profiles") or [] if isinstance(p, str)]
    kubeconfig = outputs.get("kubeconfig")
    if not kubeconfig and isinstance(cluster, ExistingClusterConfig):
        # An up that failed before its outputs: the existing cluster's own kubeconfig file.
        path = Path(cluster.existing.kubeconfig).expanduser()
        kubeconfig = path.read_text(encoding="utf-8") if path.is_file() else None
    return TeardownPlan(provider=cluster.provider, cluster_name=cluster.name,
                        kubeconfig=kubeconfig, objects=objects_to_check(deployment.get("resources") or [], profiles))


def cluster_still_there(provider: str, name: str) -> bool:
    """Whether the cluster a stack owned still exists (sim: its KWOK workdir or kwokctl's list)."""
    from infra.clusters.kind import KindClusterProvider
    from infra.clusters.minikube import MinikubeClusterProvider
    from infra.clusters.sim import SimClusterProvider, sim_workdir

    if provider == "sim":
        return sim_workdir(name).exists() or SimClusterProvider().cluster_exists({"name": name})
    if provider == "kind":
        return KindClusterProvider().cluster_exists({"name": name})
    if provider == "minikube":
        return MinikubeClusterProvider().cluster_exists({"name": name})
    raise ValueError(f"no cluster check for provider {provider!r}")


def objects_left(kubeconfig: str, objects: Sequence[ObjectRef], timeout: float = GONE_TIMEOUT_S) -> list[str]:
    """Which of `objects` still exist once deletions have had `timeout` seconds to finish (a
    namespace being deleted counts as left until it is gone)."""
    import yaml
    from kubernetes import config as kube_config
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

    from infra.wait import WaitTimeout, wait_until

    api = kube_config.new_client_from_config_dict(yaml.safe_load(kubeconfig))
    dyn = DynamicClient(api)

    def present() -> list[str]:
        left = []
        for ref in objects:
            try:
                resource = dyn.resources.get(api_version=ref.api_version, kind=ref.kind)
            except ResourceNotFoundError:
                continue  # its kind is gone (its CRD was deleted): no object of it can exist
            try:
                live = resource.get(name=ref.name, namespace=ref.namespace if resource.namespaced else None)
            except NotFoundError:
                continue
            phase = ""
            with contextlib.suppress(AttributeError, KeyError, TypeError):
                phase = f" ({live.status.phase})" if live.status and live.status.phase else ""
            left.append(f"{ref}{phase}")
        return left

    try:
        return wait_until(lambda: ((found := present()) == [], found), timeout=timeout, interval=3,
                          what=f"{len(objects)} objects of the stack to be gone")
    except WaitTimeout as exc:
        return list(exc.last) if isinstance(exc.last, list) else [str(exc)]


def verify_teardown(plan: TeardownPlan, timeout: float = GONE_TIMEOUT_S) -> list[str]:
    """What the teardown left behind (empty when it left nothing)."""
    if plan.provider in OWNED_CLUSTERS:
        return [f"{plan.provider} cluster {plan.cluster_name}"] if cluster_still_there(
            plan.provider, plan.cluster_name) else []
    if not plan.kubeconfig:
        return []  # a managed cluster deleted by the destroy, or nothing was ever created
    return objects_left(plan.kubeconfig, plan.objects, timeout)
