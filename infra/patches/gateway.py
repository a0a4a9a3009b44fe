"""gateway.kind: standin adds the stand-in gateway's objects in place of Istio's ingress gateway."""

from __future__ import annotations

from infra.config import StackConfig
from infra.gateway.standin import standin_objects
from infra.manifests.objects import Rendered


def apply(rendered: Rendered, cfg: StackConfig) -> None:
    if not cfg.gateway.standin:
        return  # with istio deployed, standin is refused with the config (infra/config.py: reference_problems)
    pipelines = bool(rendered.find("Service", "ml-pipeline", "kubeflow"))
    rendered.objects.extend(standin_objects(cfg, pipelines=pipelines))
    rendered.adjustments.append("standin-gateway")
