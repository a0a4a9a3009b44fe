"""AKS via Pulumi's own `pulumi_azure_native` package (install with `pip install -e '.[azure]'`)."""

from __future__ import annotations

import base64

import pulumi
import pulumi_azure_native as azure

from infra.clusters.managed import NODE_DISK_GB, ManagedCluster, node_type
from infra.config import AksSettings


class AksCluster(ManagedCluster):
    """A resource group, a managed cluster with an autoscaled system pool, and managed-csi premium."""

    def __init__(self, name: str, settings: AksSettings, storage_class: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, settings, storage_class, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.group = azure.resources.ResourceGroup(
            f"{name}-rg", resource_group_name=settings.resource_group or name, location=settings.region,
            opts=child)
        self.cluster = azure.containerservice.ManagedCluster(
            f"{name}-aks", resource_group_name=self.group.name, location=settings.region, dns_prefix=name,
            kubernetes_version=settings.kubernetes_version,
            identity={"type": azure.containerservice.ResourceIdentityType.SYSTEM_ASSIGNED},
            agent_pool_profiles=[{
                "name": "system", "mode": "System", "vm_size": node_type("aks", settings),
                "count": settings.nodes, "enable_auto_scaling": True, "min_count": settings.min_nodes,
                "max_count": settings.max_nodes, "os_disk_size_gb": NODE_DISK_GB, "os_type": "Linux"}],
            opts=child)
        creds = azure.containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=self.group.name, resource_name=self.cluster.name)
        kubeconfig = creds.kubeconfigs.apply(lambda ks: base64.b64decode(ks[0].value).decode())
        self._finish(name, kubeconfig, depends_on=[self.cluster])
        self._default_class(name, storage_class, "disk.csi.azure.com", {"skuName": "Premium_LRS"})
