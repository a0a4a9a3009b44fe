"""KServe's deployment mode, from `kubeflow.kserve.deploymentMode`.

Upstream Kubeflow sets KServe's default to Serverless (Knative and Istio). Where those cannot run,
RawDeployment makes each InferenceService plain Deployments and Services; KServe reads the default
from the `deploy` entry of its `inferenceservice-config` ConfigMap, so that entry is what changes.
Without the key, upstream's ConfigMap stays as it is.
"""

from __future__ import annotations

import json

from infra.config import StackConfig
from infra.errors import UserError
from infra.manifests.objects import Rendered

CONFIG_MAP = "inferenceservice-config"
DEPLOY_KEY = "deploy"
MODE_FIELD = "defaultDeploymentMode"


def apply(rendered: Rendered, cfg: StackConfig) -> None:
    mode = cfg.kubeflow.kserve_deployment_mode
    if mode is None:
        return
    config_maps = rendered.find("ConfigMap", CONFIG_MAP)
    if not config_maps:
        if "kserve" in rendered.components:
            raise UserError(f"kubeflow.kserve.deploymentMode: {rendered.release}'s KServe has no {CONFIG_MAP} "
                            f"ConfigMap to set it in; remove the key")
        return  # KServe is not deployed: nothing to set
    for config_map in config_maps:
        data = config_map.setdefault("data", {})
        try:
            deploy = json.loads(data.get(DEPLOY_KEY) or "{}")
        except json.JSONDecodeError as exc:
            raise UserError(f"kubeflow.kserve.deploymentMode: the `{DEPLOY_KEY}` entry of {CONFIG_MAP} is not "
                            f"JSON ({exc}); remove the key") from None
        deploy[MODE_FIELD] = mode
        data[DEPLOY_KEY] = json.dumps(deploy, indent=2)
    rendered.adjustments.append(f"kserve:{mode}")
