"""Admission gates: objects that webhooks intercept are applied only once the API server can call them.

A webhook's Deployment counts as available a moment before calls reach it: its endpoints, then
kube-proxy's rules for its Service, follow. A create in that moment fails with `failed calling
webhook ... connect: connection refused`, and pulumi-kubernetes does not retry it: on the kind-local
stack one `pulumi up` in a few stopped so at cert-manager's Issuers. A gate asks the API server
itself: a server-side dry-run create of objects its webhook server intercepts (the real objects, so
schema validation passes and validating webhooks are reached). Any answer from the webhooks,
admitted or refused, means they are served; only a failure to call one means wait. There is one
gate per webhook server that intercepts rendered objects (infra/dependencies.py decides which, and
what the gate itself waits for); stacks without webhooks (the sim stack) get none.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from infra.manifests.objects import Obj
from infra.server_apply import ClusterResource

GATE_TIMEOUT_S = 300.0
NOT_SERVED = ("failed calling webhook", "no endpoints available for service", "connection refused")


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
        return CreateResult(f"admission-{props['server']}", {**props, "digest": _digest(props["objects"])})

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=olds.get("digest") != _digest(news["objects"]))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._probe(news)
        return UpdateResult({**news, "digest": _digest(news["objects"])})


def _digest(bodies: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(bodies).encode()).hexdigest()


class AdmissionGate(ClusterResource):
    """Depends on one webhook server's configurations; the objects it intercepts depend on it."""

    def __init__(self, name: str, server: str, probes: Sequence[Obj], kubeconfig: pulumi.Input[str],
                 context: str | None, opts: pulumi.ResourceOptions) -> None:
        bodies = [json.dumps(o, sort_keys=True, separators=(",", ":")) for o in probes]
        props = {"server": server, "objects": bodies, "timeout": GATE_TIMEOUT_S, "digest": None}
        super().__init__(_GateProvider(), name, props, kubeconfig, context, opts)
