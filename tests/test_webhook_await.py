"""The await on injected webhook CA bundles (infra/apply.py `with_awaits`), with the real engine
and Kubernetes provider against a real API server (KWOK).

In the T2 stack every admission webhook is left out (their pods are simulated), so this is where
the `pulumi.com/waitFor` annotation is proven: `pulumi up` holds a webhook configuration until
every webhook in it has its caBundle (here injected by the test, standing in for cert-manager's
cainjector or a controller that fills its own), and fails with the wait named if nothing does.
"""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from kubernetes import client
from kubernetes import config as kube_config
from pulumi import automation as auto

from infra.apply import WAIT_FOR_ANNOTATION, KubeObject, ca_bundle_awaits, with_awaits
from infra.automation import inline_stack
from smoke_tests.wait import wait_until

pytestmark = [pytest.mark.sim, pytest.mark.slow]

CA_INJECT_ANNOTATION = "cert-manager.io/inject-ca-from"
CA_BUNDLE = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n").decode()


def webhook(name: str, timeout_s: int | None = None, count: int = 1,
            annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A validating webhook configuration as upstream ships injected ones: no caBundle yet."""
    annotations = dict(annotations if annotations is not None else {CA_INJECT_ANNOTATION: "kubeflow/serving-cert"})
    if timeout_s:
        annotations["pulumi.com/timeoutSeconds"] = str(timeout_s)
    return {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "annotations": annotations},
        "webhooks": [{
            "name": f"{name}-{i}.kubeflow-stacks.test", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Ignore",
            "namespaceSelector": {"matchLabels": {"kubeflow-stacks.test/never": "true"}},
            "clientConfig": {"service": {"name": "nowhere", "namespace": "default", "path": "/validate"}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["configmaps"]}],
        } for i in range(count)],
    }


def program_for(kubeconfig: str, obj: dict[str, Any]) -> Any:
    def program() -> None:
        provider = k8s.Provider("sim", kubeconfig=pulumi.Output.secret(kubeconfig))
        hook = KubeObject(obj["metadata"]["name"], with_awaits(obj), pulumi.ResourceOptions(provider=provider))
        pulumi.export("caBundles", hook.__dict__["webhooks"].apply(
            lambda ws: [w["clientConfig"].get("caBundle") for w in ws]))
    return program


class Injector:
    """Stands in for whoever injects CAs: once the configuration exists, fills each webhook's
    caBundle in turn, noting whether `pulumi up` was still running at each injection."""

    def __init__(self, api: client.ApiClient, name: str, count: int) -> None:
        self.admission = client.AdmissionregistrationV1Api(api)
        self.name = name
        self.count = count
        self.up_done = threading.Event()
        self.up_running_at_injection: list[bool] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _created(self) -> tuple[bool, Any]:
        try:
            return True, self.admission.read_validating_webhook_configuration(self.name)
        except client.ApiException as exc:
            if exc.status == 404:
                return False, None
            raise

    def _run(self) -> None:
        wait_until(self._created, timeout=300, interval=0.2, what=f"webhook configuration {self.name}")
        for i in range(self.count):
            self.up_running_at_injection.append(not self.up_done.is_set())
            patch = [{"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": CA_BUNDLE}]
            self.admission.patch_validating_webhook_configuration(self.name, patch)


def test_every_webhook_without_a_ca_is_awaited_whoever_injects_it() -> None:
    by_certificate = webhook("a")
    by_secret = webhook("b", annotations={"cert-manager.io/inject-ca-from-secret": "cert-manager/ca"})
    by_controller = webhook("c", count=2, annotations={})
    assert with_awaits(by_certificate)["metadata"]["annotations"][WAIT_FOR_ANNOTATION] == \
        "jsonpath={.webhooks[0].clientConfig.caBundle}"
    assert ca_bundle_awaits(by_secret) == ["jsonpath={.webhooks[0].clientConfig.caBundle}"]
    assert json.loads(with_awaits(by_controller)["metadata"]["annotations"][WAIT_FOR_ANNOTATION]) == [
        "jsonpath={.webhooks[0].clientConfig.caBundle}", "jsonpath={.webhooks[1].clientConfig.caBundle}"]
    shipped = webhook("d", count=2, annotations={})
    shipped["webhooks"][0]["clientConfig"]["caBundle"] = CA_BUNDLE
    assert ca_bundle_awaits(shipped) == ["jsonpath={.webhooks[1].clientConfig.caBundle}"]
    shipped["webhooks"][1]["clientConfig"]["caBundle"] = CA_BUNDLE
    assert WAIT_FOR_ANNOTATION not in with_awaits(shipped)["metadata"]["annotations"]


@pytest.mark.parametrize("count", [1, 2], ids=["one-webhook", "two-webhooks"])
def test_up_waits_until_every_ca_bundle_is_injected(sim_kubeconfig: Path, tmp_path: Path, count: int) -> None:
    kubeconfig = sim_kubeconfig.read_text()
    api = kube_config.new_client_from_config(str(sim_kubeconfig))
    name = f"kfstack-injected-{count}"
    ts = inline_stack(tmp_path, program_for(kubeconfig, webhook(name, count=count, annotations={})), prefix="hook")
    try:
        injector = Injector(api, name, count)
        try:
            result = ts.stack.up()
        finally:
            injector.up_done.set()
        injector.thread.join(timeout=30)
        assert result.summary.result == "succeeded"
        # Pulumi was still waiting when the last CA arrived, and recorded the injected state.
        assert injector.up_running_at_injection == [True] * count
        assert result.outputs["caBundles"].value == [CA_BUNDLE] * count
    finally:
        ts.stack.destroy()
        ts.stack.workspace.remove_stack(ts.name)


@pytest.mark.parametrize("hooks,injected", [(1, 0), (2, 1)], ids=["none-injected", "second-never-injected"])
def test_up_fails_naming_the_wait_when_a_ca_never_comes(sim_kubeconfig: Path, tmp_path: Path,
                                                        hooks: int, injected: int) -> None:
    kubeconfig = sim_kubeconfig.read_text()
    api = kube_config.new_client_from_config(str(sim_kubeconfig))
    name = f"kfstack-never-injected-{hooks}"
    ts = inline_stack(tmp_path, program_for(kubeconfig, webhook(name, timeout_s=5, count=hooks, annotations={})),
                      prefix="nohook")
    try:
        injector = Injector(api, name, injected)
        with pytest.raises(auto.CommandError) as info:
            ts.stack.up()
        injector.up_done.set()
        text = str(info.value)
        assert name in text
        assert f"webhooks[{hooks - 1}].clientConfig.caBundle" in text, text[-2000:]
    finally:
        ts.stack.destroy()
        ts.stack.workspace.remove_stack(ts.name)
