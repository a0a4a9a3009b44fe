"""An await before a phase of objects that admission webhooks intercept: the webhooks answer.

A webhook's Deployment counts as available as soon as its pod is Ready, but the API server calls
the webhook through its Service's cluster IP, and that address forwards to the pod only once the
endpoint controller and kube-proxy have caught up: on a busy machine the next phase's first
create can meet `failed calling webhook ... connection refused` (seen on the kind-local stack:
cert-manager's Issuers, right after its webhook's Deployment became available). Pulumi's provider
does not retry that, and a retry loop would only hide the cause.

So before the phases whose objects webhooks validate (cert-manager's and the custom resources),
one resource sends a server-side dry run of one object of each kind in the phase (the real object,
so every webhook on the way sees what the apply will send) and waits until none fails for a webhook
that cannot be reached. Any other answer, accepted or refused, means the webhooks answered: the
apply then reports real refusals itself. Dry runs change nothing in the cluster.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from infra.definitions import FIELD_MANAGER

ANSWER_TIMEOUT_S = 300.0
# What the API server says when it cannot reach a webhook (as opposed to a webhook's refusal).
UNREACHABLE_MARKS = ("failed calling webhook", "no endpoints available for service", "connection refused")

Obj = dict[str, Any]


def samples(objects: Sequence[Obj]) -> dict[str, str]:
    """One object per apiVersion and kind ("apiVersion/Kind" -> canonical JSON), in a stable order."""
    chosen: dict[str, str] = {}
    for obj in sorted(objects, key=lambda o: (o["apiVersion"], o["kind"], o["metadata"].get("namespace", ""),
                                               o["metadata"]["name"])):
        chosen.setdefault(f"{obj['apiVersion']}/{obj['kind']}", json.dumps(obj, sort_keys=True))
    return chosen


def unreachable_webhook(message: str) -> bool:
    """Whether an API error says a webhook could not be called (so waiting may help)."""
    lowered = message.lower()
    return "webhook" in lowered and any(mark in lowered for mark in UNREACHABLE_MARKS)


class WebhookProbe:
    """Server-side dry runs through the `kubernetes` client, from a kubeconfig text."""

    def __init__(self, kubeconfig: str, context: str | None) -> None:
        import yaml
        from kubernetes import config, dynamic

        api = config.new_client_from_config_dict(yaml.safe_load(kubeconfig), context=context or None)
        self.client = dynamic.DynamicClient(api)

    def dry_run(self, body: str) -> str | None:
        """None when the object got past admission's webhooks (accepted or refused by them), else
        the API server's message about the webhook it could not reach."""
        from kubernetes.client.exceptions import ApiException
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        obj = json.loads(body)
        try:
            resource = self.client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        except ResourceNotFoundError:
            return f"{obj['apiVersion']} {obj['kind']} is not served yet (API discovery)"
        meta = obj["metadata"]
        try:
            self.client.server_side_apply(resource, body=obj, name=meta["name"], namespace=meta.get("namespace"),
                                          field_manager=FIELD_MANAGER, force_conflicts=True, dry_run="All")
        except ApiException as exc:
            message = str(exc.body or exc.reason or exc)
            return message if unreachable_webhook(message) else None
        return None

    def wait(self, bodies: dict[str, str]) -> None:
        from infra.wait import wait_until

        def answered() -> tuple[bool, dict[str, str]]:
            failing = {kind: message[:300] for kind, body in bodies.items()
                       if (message := self.dry_run(body)) is not None}
            return not failing, failing

        wait_until(answered, timeout=ANSWER_TIMEOUT_S, interval=1.0,
                   what="the admission webhooks of the next phase to answer (server-side dry runs)")


class WebhooksAnswerProvider(ResourceProvider):
    """Outputs keep the kinds probed: a second `up` with the same kinds changes nothing."""

    @staticmethod
    def _outs(props: dict[str, Any]) -> dict[str, Any]:
        return {"phase": props["phase"], "kinds": sorted(props["samples"]), "kubeconfig": props["kubeconfig"],
                "context": props.get("context")}

    def create(self, props: dict[str, Any]) -> CreateResult:
        WebhookProbe(props["kubeconfig"], props.get("context")).wait(props["samples"])
        return CreateResult(f"webhooks-answer-{props['phase']}", self._outs(props))

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=sorted(news["samples"]) != olds.get("kinds") or news["phase"] != olds.get("phase"),
                          replaces=[])

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        WebhookProbe(news["kubeconfig"], news.get("context")).wait(news["samples"])
        return UpdateResult(self._outs(news))


class WebhooksAnswer(Resource):
    """Waits, before `phase` is applied, until admission webhooks answer for its kinds."""

    def __init__(self, name: str, phase: str, objects: Sequence[Obj], kubeconfig: pulumi.Input[str],
                 context: str | None, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {"phase": phase, "samples": samples(objects), "kubeconfig": pulumi.Output.secret(kubeconfig),
                 "context": context, "kinds": None}
        super().__init__(WebhooksAnswerProvider(), name, props, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["kubeconfig"])))
