"""The stack's objects as its state records them, and how to find them on the cluster.

A teardown looks for them after `pulumi destroy` (they must be gone); an upgrade compares their
uids before and after (data must be kept). Both read the same state export, so the reading is here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

GONE_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class ObjectRef:
    """An object to look for on the cluster."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


def type_parts(type_token: str) -> tuple[str, str] | None:
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


def crd_digests_of(resources: list[dict[str, Any]]) -> dict[str, str]:
    """The state's CRD bundle's {name: digest} ({} without one)."""
    for res in resources:
        digests = crd_digests(res)
        if digests is not None:
            return dict(digests)
    return {}


def bundled_refs(res: dict[str, Any]) -> list[ObjectRef] | None:
    """The objects a dynamic resource of the project applies for many (the CRD bundle, an object
    set of infra/object_set.py), or None for any other resource."""
    digests = crd_digests(res)
    if digests is not None:
        return [ObjectRef("apiextensions.k8s.io/v1", "CustomResourceDefinition", n) for n in sorted(digests)]
    members = (res.get("outputs") or {}).get("members")
    if not res.get("type", "").startswith("pulumi-python:dynamic") or not isinstance(members, dict):
        return None
    from infra.object_set import member_stub

    stubs = [member_stub(key, record) for key, record in sorted(members.items())]
    return [ObjectRef(s["apiVersion"], s["kind"], s["metadata"]["name"], s["metadata"].get("namespace")) for s in stubs]


def objects_to_check(resources: Iterable[dict[str, Any]], profiles: Sequence[str] = ()) -> list[ObjectRef]:
    """From a state export's resources: every CRD, namespace, and cluster-scoped object; namespaced
    objects only outside the stack's own namespaces (those go with their namespace)."""
    refs: list[ObjectRef] = []
    for res in resources:
        outputs = res.get("outputs") or {}
        bundled = bundled_refs(res)
        if bundled is not None:
            refs += bundled
            continue
        parts = type_parts(res.get("type", ""))
        meta = outputs.get("metadata") or {}
        if parts is None or "name" not in meta:
            continue
        refs.append(ObjectRef(parts[0], parts[1], meta["name"], meta.get("namespace") or None))
    refs += [ObjectRef("v1", "Namespace", p) for p in profiles]
    namespaces = {r.name for r in refs if r.kind == "Namespace"}
    unique = {r: None for r in refs if r.namespace is None or r.namespace not in namespaces}
    return list(unique)


def all_refs(resources: list[dict[str, Any]]) -> list[ObjectRef]:
    """Every object of a state, namespaced ones included (for uid comparisons)."""
    refs = []
    for res in resources:
        parts = type_parts(res.get("type", ""))
        meta = (res.get("outputs") or {}).get("metadata") or {}
        if parts and "name" in meta:
            refs.append(ObjectRef(parts[0], parts[1], meta["name"], meta.get("namespace") or None))
        refs += bundled_refs(res) or []
    return refs


def kube_client(kubeconfig: str) -> Any:
    """A Kubernetes API client for a kubeconfig's text."""
    import yaml
    from kubernetes import config as kube_config

    return kube_config.new_client_from_config_dict(yaml.safe_load(kubeconfig))


def live_uids(api: Any, refs: Iterable[ObjectRef]) -> dict[str, str]:
    """uid of each object that exists now, keyed by its description."""
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

    dyn = DynamicClient(api)
    uids = {}
    for ref in refs:
        try:
            res = dyn.resources.get(api_version=ref.api_version, kind=ref.kind)
            obj = res.get(name=ref.name, namespace=ref.namespace if res.namespaced else None)
        except (NotFoundError, ResourceNotFoundError):
            continue
        uids[str(ref)] = obj.metadata.uid
    return uids


def objects_left(kubeconfig: str, objects: Sequence[ObjectRef], timeout: float = GONE_TIMEOUT_S) -> list[str]:
    """Which of `objects` still exist once deletions have had `timeout` seconds to finish (a
    namespace being deleted counts as left until it is gone)."""
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

    from smoke_tests.wait import WaitTimeout, wait_until

    dyn = DynamicClient(kube_client(kubeconfig))

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
