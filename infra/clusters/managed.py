"""What the three managed clouds share: node sizing for Kubeflow and the default storage class."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.clusters.base import Cluster, cluster_settings
from infra.config import ManagedClusterConfig, ManagedSettings, StackConfig

# Upstream Kubeflow asks for 8 CPUs and 16 GiB or more; these node types give that per node.
DEFAULT_NODE_TYPES = {"eks": "m6i.2xlarge", "gke": "e2-standard-8", "aks": "Standard_D8s_v5"}
NODE_DISK_GB = 100


def node_type(provider: str, settings: ManagedSettings) -> str:
    return settings.node_type or DEFAULT_NODE_TYPES[provider]


def default_block_storage_class(name: str, class_name: str, provisioner: str, parameters: dict[str, str],
                                parent: pulumi.Resource, provider: k8s.Provider) -> k8s.storage.v1.StorageClass:
    """The cloud's block storage as the cluster's default class, which Kubeflow's claims then use."""
    return k8s.storage.v1.StorageClass(
        f"{name}-{class_name}",
        metadata={"name": class_name,
                  "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        provisioner=provisioner, parameters=parameters, volume_binding_mode="WaitForFirstConsumer",
        allow_volume_expansion=True, reclaim_policy="Delete",
        opts=pulumi.ResourceOptions(parent=parent, provider=provider))


class ManagedCluster(Cluster):
    """Base of the cloud clusters, whose constructors all take (name, settings, storage_class, opts)."""

    def __init__(self, name: str, settings: ManagedSettings, storage_class: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        # The component's type is the cloud's class: kubeflow-stacks:clusters:EksCluster, and so on.
        super().__init__(f"kubeflow-stacks:clusters:{type(self).__name__}", name, None, opts)

    def _default_class(self, name: str, storage_class: str, provisioner: str, parameters: dict[str, str]) -> None:
        """Create the cloud's block storage class as the default, unless the stack deploys its own."""
        self.storage_class = (default_block_storage_class(name, storage_class, provisioner, parameters, self,
                                                          self.k8s_provider) if storage_class else None)

    @classmethod
    def from_config(cls, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None,
                    workload_images: set[str] | None = None) -> ManagedCluster:
        cluster = cluster_settings(cfg, ManagedClusterConfig)
        storage_class = cfg.storage.default_class if cfg.storage.mode == "existing" else ""
        return cls(cfg.cluster.name, cluster.managed, storage_class, opts)
