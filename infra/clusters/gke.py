"""GKE via Pulumi's own `pulumi_gcp` package (install with `pip install -e '.[gcp]'`)."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.clusters.managed import NODE_DISK_GB, ManagedCluster, node_type
from infra.config import GkeSettings


def gke_kubeconfig(name: str, endpoint: str, ca: str) -> str:
    """A kubeconfig that authenticates with gke-gcloud-auth-plugin, as `gcloud` writes it."""
    return f"""apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: https://{endpoint}
    certificate-authority-data: {ca}
contexts:
- name: {name}
  context: {{cluster: {name}, user: {name}}}
current-context: {name}
users:
- name: {name}
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: gke-gcloud-auth-plugin
      provideClusterInfo: true
"""


class GkeCluster(ManagedCluster):
    """A regional cluster with its own autoscaled node pool, and pd-balanced as the default class."""

    def __init__(self, name: str, settings: GkeSettings, storage_class: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, settings, storage_class, opts)
        gcp_provider = gcp.Provider(f"{name}-gcp", project=settings.project, region=settings.region,
                                    opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, provider=gcp_provider)
        self.cluster = gcp.container.Cluster(
            f"{name}-gke", name=name, location=settings.region, remove_default_node_pool=True,
            initial_node_count=1, min_master_version=settings.kubernetes_version,
            deletion_protection=False,
            workload_identity_config={"workload_pool": f"{settings.project}.svc.id.goog"}, opts=child)
        self.node_pool = gcp.container.NodePool(
            f"{name}-nodes", cluster=self.cluster.name, location=settings.region, node_count=settings.nodes,
            autoscaling={"min_node_count": settings.min_nodes, "max_node_count": settings.max_nodes},
            node_config={"machine_type": node_type("gke", settings), "disk_size_gb": NODE_DISK_GB,
                         "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"]},
            opts=child)
        kubeconfig = pulumi.Output.all(self.cluster.name, self.cluster.endpoint,
                                       self.cluster.master_auth.cluster_ca_certificate).apply(
            lambda a: gke_kubeconfig(a[0], a[1], a[2]))
        self._finish(name, kubeconfig, depends_on=[self.node_pool])
        self._default_class(name, storage_class, "pd.csi.storage.gke.io", {"type": "pd-balanced"})
