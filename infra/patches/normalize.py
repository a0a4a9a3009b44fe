"""Leave out fields that the API server drops or a controller owns, so re-applies show no drift.

- An aggregated ClusterRole (one with `aggregationRule`) has its `rules` written by Kubernetes'
  clusterrole-aggregation-controller; applying upstream's `rules: []` conflicts with it.
- An empty `rules: []` on a Role or ClusterRole, and an empty `data: {}` on a Secret or
  ConfigMap, are dropped by the API server (for Secrets, a controller fills `data` later): applied
  as written, every later preview would show a change.
- An empty `caBundle: ""` in a webhook's clientConfig (the PodDefaults webhook) is filled by an
  injector. Applied as written, this stack would own the field and blank the injected CA on each
  update, and the await on the CA (infra/apply.py) would pass at once on the empty string.
"""

from __future__ import annotations

from infra.config import StackConfig
from infra.manifests.objects import Rendered


def apply(rendered: Rendered, cfg: StackConfig) -> None:
    dropped = 0
    for obj in rendered.objects:
        kind = obj["kind"]
        if kind in ("ClusterRole", "Role") and "rules" in obj and ("aggregationRule" in obj or obj["rules"] == []):
            del obj["rules"]
            dropped += 1
        if kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            for hook in obj.get("webhooks") or []:
                client = hook.get("clientConfig") or {}
                if "caBundle" in client and not client["caBundle"]:
                    del client["caBundle"]
                    dropped += 1
        if kind in ("Secret", "ConfigMap"):
            for field in ("data", "stringData", "binaryData"):
                if field in obj and obj[field] in ({}, None):
                    del obj[field]
                    dropped += 1
    if dropped:
        rendered.adjustments.append(f"normalize:empty-or-controller-owned-fields({dropped})")
