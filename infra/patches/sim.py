"""Adjustments for the KWOK-simulated cluster only: off on every other provider.

On a simulated cluster pods never run, so an admission webhook can never answer and every API
call it intercepts fails. Webhook configurations (and CRD conversion webhooks) are therefore left
out. Volume binding needs no sim-only change: the sim stack uses `storage.mode: static`, a
feature users also have, which pre-creates a PersistentVolume per claim.
"""

from __future__ import annotations

from infra.config import StackConfig
from infra.manifests.objects import Rendered

WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def apply(rendered: Rendered, cfg: StackConfig) -> None:
    if cfg.cluster.provider != "sim":
        return
    before = len(rendered.objects)
    rendered.objects[:] = [o for o in rendered.objects if o["kind"] not in WEBHOOK_KINDS]
    removed = before - len(rendered.objects)
    converted = 0
    for crd in rendered.find("CustomResourceDefinition"):
        conversion = crd["spec"].get("conversion")
        if conversion and conversion.get("strategy") == "Webhook":
            crd["spec"]["conversion"] = {"strategy": "None"}
            converted += 1
    rendered.adjustments.append(f"sim:no-admission-webhooks({removed})")
    if converted:
        rendered.adjustments.append(f"sim:no-conversion-webhooks({converted})")
