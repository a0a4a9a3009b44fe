"""The await on cert-manager-injected webhooks (infra/apply.py `with_awaits`), with the real engine
and Kubernetes provider against a real API server (KWOK).

In the T2 stack every admission webhook is left out (their pods are simulated), so this is where
the `pulumi.com/waitFor` annotation is proven: `pulumi up` holds the webhook configuration until
its caBundle is injected (here by the test, standing in for cert-manager's cainjector), and fails
with the wait named if nothing ever injects it.
"""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from kubernetes import client
from kubernetes import config as kube_config
from pulumi import automation as auto

from infra.apply import CA_INJECT_ANNOTATION, WAIT_FOR_ANNOTATION, KubeObject, with_awaits
from infra.automation import inline_stack
from infra.wait import wait_until

pytestmark = [pytest.mark.sim, pytest.mark.slow]

INJECT_AFTER_S = 4.0
CA_BUNDLE = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n").decode()


def webhook(name: str, timeout_s: int | None = None) -> dict[str, Any]:
    """A validating webhook as upstream ships cert-manager-injected ones: no caBundle yet."""
    annotations = {CA_INJECT_ANNOTATION: "kubeflow/serving-cert"}
    if timeout_s:
        annotations["pulumi.com/timeoutSeconds"] = str(timeout_s)
    return {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "annotations": annotations},
        "webhooks": [{
            "name": f"{name}.kubeflow-stacks.test", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Ignore",
            "namespaceSelector": {"matchLabels": {"kubeflow-stacks.test/never": "true"}},
            "clientConfig": {"service": {"name": "nowhere", "namespace": "default", "path": "/validate"}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["configmaps"]}],
        }],
    }


def program_for(kubeconfig: str, obj: dict[str, Any]) -> Any:
    def program() -> None:
        provider = k8s.Provider("sim", kubeconfig=pulumi.Output.secret(kubeconfig))
        hook = KubeObject(obj["metadata"]["name"], with_awaits(obj), pulumi.ResourceOptions(provider=provider))
        pulumi.export("caBundle", hook.__dict__["webhooks"].apply(lambda w: w[0]["clientConfig"].get("caBundle")))
    return program


def inject_later(api: client.ApiClient, name: str) -> threading.Thread:
    """Stand in for cert-manager's cainjector: once the configuration exists, set its caBundle."""
    admission = client.AdmissionregistrationV1Api(api)

    def run() -> None:
        def created() -> tuple[bool, Any]:
            try:
                return True, admission.read_validating_webhook_configuration(name)
            except client.ApiException as exc:
                if exc.status == 404:
                    return False, None
                raise

        wait_until(created, timeout=300, interval=0.2, what=f"webhook configuration {name}")
        time.sleep(INJECT_AFTER_S)
        patch = [{"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": CA_BUNDLE}]
        admission.patch_validating_webhook_configuration(name, patch)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_with_awaits_marks_only_injected_webhooks() -> None:
    hook = with_awaits(webhook("marked"))
    assert hook["metadata"]["annotations"][WAIT_FOR_ANNOTATION] == "jsonpath={.webhooks[0].clientConfig.caBundle}"
    plain = webhook("plain")
    del plain["metadata"]["annotations"][CA_INJECT_ANNOTATION]
    assert WAIT_FOR_ANNOTATION not in with_awaits(plain)["metadata"].get("annotations", {})


def test_up_waits_for_the_injected_ca_bundle(sim_kubeconfig: Path, tmp_path: Path) -> None:
    kubeconfig = sim_kubeconfig.read_text()
    api = kube_config.new_client_from_config(str(sim_kubeconfig))
    name = "kfstack-injected"
    ts = inline_stack(tmp_path, program_for(kubeconfig, webhook(name)), prefix="hook")
    try:
        injector = inject_later(api, name)
        started = time.monotonic()
        result = ts.stack.up()
        took = time.monotonic() - started
        injector.join(timeout=10)
        assert result.summary.result == "succeeded"
        assert result.outputs["caBundle"].value == CA_BUNDLE  # what Pulumi recorded is the injected state
        assert took >= INJECT_AFTER_S, f"up returned after {took:.1f}s, before the CA was injected"
    finally:
        ts.stack.destroy()
        ts.stack.workspace.remove_stack(ts.name)


def test_up_fails_naming_the_wait_when_nothing_injects(sim_kubeconfig: Path, tmp_path: Path) -> None:
    kubeconfig = sim_kubeconfig.read_text()
    ts = inline_stack(tmp_path, program_for(kubeconfig, webhook("kfstack-never-injected", timeout_s=5)),
                      prefix="nohook")
    try:
        with pytest.raises(auto.CommandError) as info:
            ts.stack.up()
        text = str(info.value)
        assert "kfstack-never-injected" in text
        assert "caBundle" in text or "waitFor" in text or "timed out" in text.lower(), text[-2000:]
    finally:
        ts.stack.destroy()
        ts.stack.workspace.remove_stack(ts.name)
