"""Admission gates (infra/admission.py): T0 on which objects a gate probes, T1 on the real render,
T2 on a real kube-apiserver calling a real TLS webhook that starts only after its configuration is
in place: `pulumi up` of the project's ordered apply waits for it instead of failing the
intercepted object's create with "failed calling webhook ... connection refused" (kind-local's
intermittent failure at cert-manager's Issuers)."""

from __future__ import annotations

import base64
import http.server
import json
import ssl
import threading
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from kubernetes import client
from kubernetes import config as kube_config

from infra.admission import not_served
from infra.apply import KubeflowArgs, KubeflowDeployment
from infra.automation import inline_stack
from infra.config import parse_stack_config
from infra.dependencies import GATE_PREFIX, derive
from infra.manifests.objects import object_key
from infra.manifests.render import render
from smoke_tests.process import free_port
from tests.helpers import base_raw
from tests.tls import self_signed

GROUP = "kfstack.test"
CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": f"widgets.{GROUP}"},
       "spec": {"group": GROUP, "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
WIDGET = {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"},
          "spec": {"size": 1}}


def webhook_config(url: str, ca: bytes) -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "kfstack-gate-test"},
            "webhooks": [{"name": "widgets.kfstack.test", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                          "failurePolicy": "Fail", "timeoutSeconds": 5,
                          "clientConfig": {"url": url, "caBundle": base64.b64encode(ca).decode()},
                          "rules": [{"apiGroups": [GROUP], "apiVersions": ["v1"], "operations": ["CREATE"],
                                     "resources": ["widgets"]}]}]}


def test_only_objects_the_webhook_intercepts_are_probed_and_gated() -> None:
    url = "https://127.0.0.1:1/"
    hook = webhook_config(url, b"x")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}
    graph = derive([CRD, hook, cm, secret, WIDGET])
    assert list(graph.gates) == [GATE_PREFIX + url]
    assert graph.gates[GATE_PREFIX + url].probes == (WIDGET,)
    assert GATE_PREFIX + url in graph.needs[object_key(WIDGET)]
    assert graph.needs[object_key(cm)] == {} and graph.needs[object_key(secret)] == {}
    assert not_served('Internal error occurred: failed calling webhook "x": dial tcp: connect: connection refused')
    assert not not_served('admission webhook "x" denied the request: size must be positive')


@pytest.mark.render
def test_kind_local_render_gates_cert_managers_issuers_and_sim_has_no_gate(manifests_tree: Path) -> None:
    no_istio = {"release": "v1.11.0", "components": "core", "include": ["istio-crds"],
                "exclude": ["istio", "kubeflow-istio-resources", "knative-serving", "pipelines", "centraldashboard"]}
    storage = {"mode": "existing", "defaultClass": "standard"}
    cfg = parse_stack_config("t", base_raw(kubeflow=no_istio, storage=storage), {"auth"})
    graph = derive(render(cfg, manifests_tree).objects)
    gate = graph.gates[GATE_PREFIX + "cert-manager/cert-manager-webhook"]
    probed = {(o["kind"], o["metadata"]["name"]) for o in gate.probes}
    assert ("ClusterIssuer", "kubeflow-self-signing-issuer") in probed
    sim = parse_stack_config("s", base_raw(cluster={"provider": "sim", "name": "s"}), {"auth"})
    sim_objects = render(sim, manifests_tree).objects
    assert not [o for o in sim_objects if o["kind"].endswith("WebhookConfiguration")]  # so no gate on sim
    assert derive(sim_objects).gates == {}


class LateWebhook:
    """A TLS webhook that is not serving when it is first called, and serves from then on.

    The first call gets HTTP 500, which the API server reports as `failed calling webhook`, the
    error a webhook whose Service has no endpoint yet gives; every later call is admitted. Each call
    is recorded in order, (answer, kind, dry run), so the test reads what happened from the calls
    themselves, not from how long anything took."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.calls: list[tuple[str, str, bool]] = []
        calls = self.calls
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                request = review["request"]
                with lock:
                    serving = bool(calls)
                    calls.append(("admitted" if serving else "refused", request["kind"]["kind"],
                                  bool(request.get("dryRun"))))
                if not serving:
                    self.send_error(500, "not serving yet")
                    return
                body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {
                    "uid": request["uid"], "allowed": True}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = http.server.HTTPServer(("127.0.0.1", port), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.sim
@pytest.mark.slow
def test_up_waits_for_a_webhook_that_answers_late(sim_kubeconfig: Path, tmp_path: Path) -> None:
    kubeconfig = sim_kubeconfig.read_text()
    api = kube_config.new_client_from_config(str(sim_kubeconfig))
    port = free_port()
    ca, context = self_signed(tmp_path)
    objects = [CRD, webhook_config(f"https://127.0.0.1:{port}/validate", ca), WIDGET]

    def program() -> None:
        provider = k8s.Provider("sim", kubeconfig=pulumi.Output.secret(kubeconfig))
        deployment = KubeflowDeployment("gate", KubeflowArgs(objects=objects, provider=provider, kubeconfig=kubeconfig))
        pulumi.export("gates", list(deployment.gates))

    ts = inline_stack(tmp_path, program, prefix="gate")
    hook = LateWebhook(port, context)
    try:
        result = ts.stack.up()
        assert result.summary.result == "succeeded"
        assert result.outputs["gates"].value == [f"https://127.0.0.1:{port}/validate"]
        # The gate's dry-run met the webhook not serving, the gate asked again and was answered, and only
        # then was the Widget created: without the gate, or with one that does not wait, the create is
        # the refused call and `up` fails, or the create follows the refusal directly.
        assert hook.calls == [("refused", "Widget", True), ("admitted", "Widget", True),
                              ("admitted", "Widget", False)], hook.calls
        assert client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w")
    finally:
        ts.stack.destroy()
        ts.stack.workspace.remove_stack(ts.name)
        hook.stop()
