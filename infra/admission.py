"""Admission gates: a phase that follows admission webhooks starts only once the API server can call them.

A webhook's Deployment counts as available a moment before calls reach it: its endpoints, then
kube-proxy's rules for its Service, follow. A create in that moment fails with `failed calling
webhook ... connect: connection refused`, and pulumi-kubernetes does not retry it: on the kind-local
stack one `pulumi up` in a few stopped so at cert-manager's Issuers. The gate asks the API server
itself: a server-side dry-run create of each object of the next phase that an earlier webhook
intercepts (the real object, so schema validation passes and validating webhooks are reached).
Any answer from the webhooks, admitted or refused, means they are served; only a failure to call
one means wait. Stacks without webhooks (the sim stack) get no gate.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from infra.manifests.objects import Obj, group_of

GATE_TIMEOUT_S = 300.0
NOT_SERVED = ("failed calling webhook", "no endpoints available for service", "connection refused")
WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
PROBE_LIMIT = 50  # a gate probes one object of each kind first, then others, up to this many


def plural_of(kind: str, crd_plurals: dict[tuple[str, str], str], group: str) -> str:
    """The resource name a webhook rule uses for a kind: the CRD's plural, else English's usual."""
    if (group, kind) in crd_plurals:
        return crd_plurals[(group, kind)]
    lower = kind.lower()
    return lower + ("es" if lower.endswith(("s", "x", "ch", "sh")) else "s")


def crd_plurals(objects: Sequence[Obj]) -> dict[tuple[str, str], str]:
    return {(o["spec"]["group"], o["spec"]["names"]["kind"]): o["spec"]["names"]["plural"]
            for o in objects if o["kind"] == "CustomResourceDefinition"}


def intercepts(webhook_configs: Sequence[Obj], obj: Obj, plurals: dict[tuple[str, str], str]) -> bool:
    """Whether any webhook's rules match a CREATE of `obj` (by group and resource)."""
    group = group_of(obj)
    resource = plural_of(obj["kind"], plurals, group)
    for config in webhook_configs:
        for hook in config.get("webhooks") or []:
            for rule in hook.get("rules") or []:
                ops = rule.get("operations") or []
                if not ({"CREATE", "*"} & set(ops)):
                    continue
                groups = rule.get("apiGroups") or []
                resources = {r.split("/")[0] for r in rule.get("resources") or []}
                if ("*" in groups or group in groups) and ("*" in resources or resource in resources):
                    return True
    return False


def probes_for(phase_objects: Sequence[Obj], earlier_webhooks: Sequence[Obj], all_objects: Sequence[Obj]) -> list[Obj]:
    """The objects of a phase that an earlier phase's webhooks intercept (Secrets never: their data
    would sit in the gate's state), one of each kind first."""
    plurals = crd_plurals(all_objects)
    hit = [o for o in phase_objects if o["kind"] != "Secret" and intercepts(earlier_webhooks, o, plurals)]
    firsts: dict[tuple[str, str], Obj] = {}
    for o in hit:
        firsts.setdefault((o["apiVersion"], o["kind"]), o)
    rest = [o for o in hit if all(o is not f for f in firsts.values())]
    return [*firsts.values(), *rest][:PROBE_LIMIT]


def not_served(message: str) -> bool:
    return any(marker in message for marker in NOT_SERVED)


class _GateProvider(ResourceProvider):
    def _probe(self, props: dict[str, Any]) -> None:
        import yaml
        from kubernetes import config, dynamic
        from kubernetes.client.exceptions import ApiException
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        api = config.new_client_from_config_dict(yaml.safe_load(props["kubeconfig"]), context=props.get("context"))
        dyn = dynamic.DynamicClient(api)
        deadline = time.monotonic() + float(props.get("timeout") or GATE_TIMEOUT_S)
        for body in props["objects"]:
            obj = json.loads(body)
            what = f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}".replace(" /", " ")
            last = ""
            while True:
                try:
                    resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
                    resource.create(body=obj, namespace=obj["metadata"].get("namespace"), dry_run="All")
                    break
                except ApiException as exc:
                    message = f"{exc.status} {exc.reason}: {exc.body}"
                    if not not_served(message):
                        break  # a webhook answered (admitted or refused), or another API error: served
                    last = message
                except ResourceNotFoundError as exc:  # discovery not caught up with a new definition
                    last = str(exc)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"admission webhooks still cannot be called for {what} after "
                                       f"{props.get('timeout') or GATE_TIMEOUT_S:.0f}s: {last[-600:]}")
                time.sleep(1)

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._probe(props)
        return CreateResult(f"admission-{props['phase']}", {**props, "digest": _digest(props["objects"])})

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=olds.get("digest") != _digest(news["objects"]))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._probe(news)
        return UpdateResult({**news, "digest": _digest(news["objects"])})


def _digest(bodies: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(bodies).encode()).hexdigest()


class AdmissionGate(Resource):
    """Depends on the previous phase; the next phase depends on it."""

    def __init__(self, name: str, phase: str, probes: Sequence[Obj], kubeconfig: pulumi.Input[str],
                 context: str | None, opts: pulumi.ResourceOptions) -> None:
        bodies = [json.dumps(o, sort_keys=True, separators=(",", ":")) for o in probes]
        props = {"phase": phase, "objects": bodies, "kubeconfig": pulumi.Output.secret(kubeconfig),
                 "context": context, "timeout": GATE_TIMEOUT_S, "digest": None}
        super().__init__(_GateProvider(), name, props, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["kubeconfig"])))
