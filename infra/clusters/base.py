"""One interface over every kind of cluster the project can target.

`provision_cluster(cfg)` returns a `Cluster`: a component whose `kubeconfig` is a secret output
and whose `k8s_provider` every in-cluster resource uses. Nothing reads the user's current
kubectl context.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

import pulumi
import pulumi_kubernetes as k8s

from infra.config import StackConfig

T = TypeVar("T")

MODULES = {
    "kind": ("infra.clusters.kind", "KindCluster"),
    "minikube": ("infra.clusters.minikube", "MinikubeCluster"),
    "existing": ("infra.clusters.existing", "ExistingCluster"),
    "sim": ("infra.clusters.sim", "SimCluster"),
    "eks": ("infra.clusters.eks", "EksCluster"),
    "gke": ("infra.clusters.gke", "GkeCluster"),
    "aks": ("infra.clusters.aks", "AksCluster"),
}


class Cluster(pulumi.ComponentResource):
    """Base of every cluster component: subclasses set `kubeconfig`, then call `_finish`."""

    kubeconfig: pulumi.Output[str]
    k8s_provider: k8s.Provider
    context: str | None = None
    # The resource whose deletion takes every in-cluster object with it (a local cluster the stack
    # owns): `pulumi destroy` then skips deleting ~650 objects one by one. None where objects must
    # really be deleted: an existing cluster, and cloud clusters, whose controllers made load
    # balancers and disks for Services and claims that only deleting those objects cleans up.
    deleted_with: pulumi.Resource | None = None
    # Stack outputs the cluster adds beside the kubeconfig (minikube: the checks it skipped).
    outputs: dict[str, pulumi.Output[Any]] = {}

    def _finish(self, name: str, kubeconfig: pulumi.Input[str], *, context: str | None = None,
                depends_on: list[pulumi.Resource] | None = None, deleted_with: pulumi.Resource | None = None) -> None:
        self.deleted_with = deleted_with
        self.kubeconfig = pulumi.Output.secret(kubeconfig)
        self.k8s_provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            context=context,
            # A cluster that is gone takes its objects with it; let destroy finish.
            delete_unreachable=True,
            # An update interrupted before its state was saved left objects Pulumi does not know
            # yet; creating them again adopts them instead of failing, under the same field manager
            # (infra/apply.py `with_field_manager`). Object URNs never change (see infra/apply.py),
            # so this cannot turn a rename into a delete.
            upsert_existing_objects=True,
            # New Dex users or a new client secret update these in place (the checksum annotation
            # on Dex and oauth2-proxy rolls their pods) instead of deleting and recreating them.
            enable_config_map_mutable=True,
            enable_secret_mutable=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on or []),
        )
        self.register_outputs({"kubeconfig": self.kubeconfig})


def cluster_settings(cfg: StackConfig, kind: type[T]) -> T:
    """The stack's cluster section as the model a component takes (MODULES picks the component by
    provider, so a mismatch is a bug here, not a config problem)."""
    if not isinstance(cfg.cluster, kind):
        raise TypeError(f"{kind.__name__} given a {cfg.cluster.provider} cluster")
    return cfg.cluster


def provision_cluster(cfg: StackConfig, opts: pulumi.ResourceOptions | None = None,
                      workload_images: set[str] | None = None) -> Cluster:
    """The stack's cluster. `workload_images`: what the render's workloads run. Every provider's
    `from_config` takes it; kind loads the other preloaded images beside the apply
    (infra/clusters/late_images.py), the others have nothing to load late."""
    module_name, class_name = MODULES[cfg.cluster.provider]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        extra = {"eks": "aws", "gke": "gcp", "aks": "azure"}.get(cfg.cluster.provider)
        hint = f" (install it with: pip install -e '.[{extra}]')" if extra else ""
        raise RuntimeError(f"cluster provider {cfg.cluster.provider!r} needs {exc.name}{hint}") from exc
    cls = getattr(module, class_name)
    return cls.from_config(cfg, opts, workload_images)  # type: ignore[no-any-return]
