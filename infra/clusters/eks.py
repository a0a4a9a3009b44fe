"""EKS via Pulumi's own `pulumi_eks` package (install with `pip install -e '.[aws]'`)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

from infra.clusters.managed import NODE_DISK_GB, ManagedCluster, node_type
from infra.config import EksSettings


class EksCluster(ManagedCluster):
    """A managed node group sized for Kubeflow, the EBS CSI driver, and gp3 as the default class."""

    def __init__(self, name: str, settings: EksSettings, storage_class: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, settings, storage_class, opts)
        aws_provider = aws.Provider(f"{name}-aws", region=settings.region, opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, providers={"aws": aws_provider})
        self.cluster = eks.Cluster(
            f"{name}-eks", name=name, version=settings.kubernetes_version, instance_type=node_type("eks", settings),
            desired_capacity=settings.nodes, min_size=settings.min_nodes, max_size=settings.max_nodes,
            node_root_volume_size=NODE_DISK_GB, create_oidc_provider=True, opts=child)
        self.ebs_csi = aws.eks.Addon(f"{name}-ebs-csi", cluster_name=name, addon_name="aws-ebs-csi-driver",
                                     opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                                         depends_on=[self.cluster])))
        self._finish(name, self.cluster.kubeconfig.apply(lambda k: k if isinstance(k, str) else json.dumps(k)),
                     depends_on=[self.cluster])
        self._default_class(name, storage_class, "ebs.csi.aws.com", {"type": "gp3"})
