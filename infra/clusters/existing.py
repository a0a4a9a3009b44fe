"""An existing cluster: read its kubeconfig; create nothing, delete nothing."""

from __future__ import annotations

from pathlib import Path

import pulumi

from infra.clusters.base import Cluster, cluster_settings
from infra.config import ExistingClusterConfig, StackConfig
from infra.errors import UserError


class ExistingCluster(Cluster):
    """Only a Kubernetes provider: `pulumi destroy` removes what the stack applied, not the cluster."""

    def __init__(self, name: str, config: ExistingClusterConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kubeflow-stacks:clusters:ExistingCluster", name, None, opts)
        settings = config.existing
        path = Path(settings.kubeconfig).expanduser()
        if not path.is_file():
            raise UserError(
                f"kubeflow-stacks:cluster.existing.kubeconfig = {settings.kubeconfig!r}: no such file; "
                "point it at the cluster's kubeconfig")
        self.context = settings.context
        self._finish(name, path.read_text(), context=settings.context)

    @classmethod
    def from_config(cls, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None,
                    workload_images: set[str] | None = None) -> ExistingCluster:
        return cls(cfg.cluster.name, cluster_settings(cfg, ExistingClusterConfig), opts)
