"""gateway.kind: standin adds the stand-in gateway's objects in place of Istio's ingress gateway."""

from __future__ import annotations

from infra.config import StackConfig
from infra.errors import UserError
from infra.gateway.standin import standin_objects
from infra.manifests.objects import Rendered


def apply(rendered: Rendered, cfg: StackConfig) -> None:
    if not cfg.gateway.standin:
        return
    if "istio" in rendered.components:
        raise UserError("gateway.kind: standin takes the place of Istio's ingress gateway, but the stack "
                        "deploys istio: add istio to kubeflow.exclude (Istio's CRDs may stay, as the "
                        "istio-crds component), or set gateway.kind: istio")
    rendered.objects.extend(standin_objects(cfg))
    rendered.adjustments.append("standin-gateway")
