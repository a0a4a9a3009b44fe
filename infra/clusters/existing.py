"""An existing cluster: read its kubeconfig; create nothing, delete nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi

from infra.clusters.base import Cluster
from infra.config import StackConfig
from infra.errors import UserError


@dataclass(frozen=True)
class ExistingClusterArgs:
    kubeconfig_path: str
    context: str | None = None


class ExistingCluster(Cluster):
    """Only a Kubernetes provider: `pulumi destroy` removes what the stack applied, not the cluster."""

    def __init__(self, name: str, args: ExistingClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kubeflow-stacks:clusters:ExistingCluster", name, None, opts)
        path = Path(args.kubeconfig_path).expanduser()
        if not path.is_file():
            raise UserError(
                f"kubeflow-stacks:cluster.existing.kubeconfig = {args.kubeconfig_path!r}: no such file; "
                "point it at the cluster's kubeconfig")
        self.context = args.context
        self._finish(name, path.read_text(), context=args.context)

    @classmethod
    def from_config(cls, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None) -> ExistingCluster:
        existing = cfg.cluster.existing
        assert existing is not None
        return cls(cfg.cluster.name, ExistingClusterArgs(existing.kubeconfig, existing.context), opts)
