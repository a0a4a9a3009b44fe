"""Honest Python dynamic providers for clusters made by a local binary (kind, minikube, kwokctl).

The engine serializes the provider object into state, so it holds no clients or secrets; every
method finds the pinned binary itself. IDs are deterministic, `diff` asks for replacement when a
field that forces a new cluster changes, and the kubeconfig output is secret.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult


def whole(value: Any) -> int:
    """Numbers come back from the engine as floats (protobuf Struct); counts are whole numbers."""
    return int(value)


class LocalClusterProvider(ResourceProvider, abc.ABC):
    """create/read/diff/update/delete in terms of four small cluster operations."""

    kind: ClassVar[str]
    # Inputs whose change needs a new cluster (everything else is updated in place).
    replace_keys: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def create_cluster(self, props: dict[str, Any]) -> str:
        """Create the cluster and return its kubeconfig."""

    @abc.abstractmethod
    def delete_cluster(self, props: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def cluster_exists(self, props: dict[str, Any]) -> bool: ...

    def update_cluster(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Apply in-place changes; by default there are none beyond what `replace_keys` lists."""

    def cluster_id(self, props: dict[str, Any]) -> str:
        return f"{self.kind}:{props['name']}"

    def create(self, props: dict[str, Any]) -> CreateResult:
        try:
            kubeconfig = self.create_cluster(props)
        except Exception:
            # Leave nothing half-created: a failed create must not strand a running cluster.
            if self.cluster_exists(props):
                self.delete_cluster(props)
            raise
        return CreateResult(self.cluster_id(props), {**props, "kubeconfig": kubeconfig})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        if not self.cluster_exists(props):
            return ReadResult(None, {})  # gone: refresh drops it, the next up recreates it
        return ReadResult(id_, props)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = sorted(k for k in set(olds) | set(news)
                         if k != "kubeconfig" and not k.startswith("__") and olds.get(k) != news.get(k))
        replaces = [k for k in changed if k in self.replace_keys]
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self.update_cluster(olds, news)
        return UpdateResult({**news, "kubeconfig": olds.get("kubeconfig", "")})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        if self.cluster_exists(props):
            self.delete_cluster(props)


class LocalClusterResource(Resource):
    """The dynamic resource for one local cluster; its kubeconfig output is secret."""

    kubeconfig: pulumi.Output[str]

    def __init__(self, provider: LocalClusterProvider, name: str, props: dict[str, Any],
                 opts: pulumi.ResourceOptions) -> None:
        super().__init__(provider, name, {**props, "kubeconfig": None},
                         pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
                             additional_secret_outputs=["kubeconfig"])))
