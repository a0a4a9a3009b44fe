"""Helpers of the live Kubeflow Pipelines tests (tests/test_live_kind_stack.py): the KFP API reached
through the Kubernetes API's service proxy as a profile's owner, a one-step pipeline with an output
artifact, and short pods in a profile namespace that report what they saw in their log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from infra.names import unique_name
from smoke_tests.wait import wait_until

KFP_PROXY = "/api/v1/namespaces/kubeflow/services/ml-pipeline:8888/proxy"
# The profile hook's image (Python with botocore, built here under alpine/k8s's name).
BOTO_IMAGE = "docker.io/alpine/k8s:1.32.3"
POD_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}

# Lists the namespace's prefix and another's with the namespace's own key; prints one JSON line.
LIST_WITH_NAMESPACE_KEY = """
import json, os, sys
import botocore.session
s3 = botocore.session.get_session().create_client(
    "s3", endpoint_url="http://minio-service.kubeflow:9000", region_name="us-east-1",
    aws_access_key_id=os.environ["ACCESS"], aws_secret_access_key=os.environ["SECRET"])
own = s3.list_objects_v2(Bucket="mlpipeline", Prefix=sys.argv[1]).get("Contents", [])
try:
    s3.list_objects_v2(Bucket="mlpipeline", Prefix=sys.argv[2])
    other = "allowed"
except Exception as exc:
    other = getattr(exc, "response", {}).get("Error", {}).get("Code", repr(exc))
print(json.dumps({"own": [o["Key"] for o in own], "other": other}))
"""

# Calls the API server directly with a forged identity header; prints the outcome.
FORGED_CALL = """
import json, sys, urllib.request
class Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect (to log in) is the answer
req = urllib.request.Request(sys.argv[1], headers={"kubeflow-userid": sys.argv[2]})
try:
    with urllib.request.build_opener(Stay).open(req, timeout=10) as resp:
        print(json.dumps({"status": resp.status}))
except urllib.error.HTTPError as exc:
    print(json.dumps({"status": exc.code}))
except Exception as exc:
    print(json.dumps({"refused": repr(exc)}))
"""


def kfp_call(api: client.ApiClient, method: str, path: str, user: str, body: Any = None) -> Any:
    """One KFP REST call as `user` (the identity header the gateway would set), through the
    Kubernetes API's service proxy: the cluster admin's way in, not a user's."""
    data, _, _ = api.call_api(f"{KFP_PROXY}{path}", method, header_params={
        "kubeflow-userid": user, "Content-Type": "application/json", "Accept": "application/json"},
        body=body, auth_settings=["BearerToken"], _preload_content=False, _request_timeout=60)
    return json.loads(data.data or b"{}")


def compiled_spec(pipeline: Any, workdir: Path) -> dict[str, Any]:
    from kfp import compiler

    out = workdir / f"{unique_name('pipeline')}.yaml"
    compiler.Compiler().compile(pipeline, str(out))
    spec: dict[str, Any] = yaml.safe_load(out.read_text(encoding="utf-8"))
    return spec


def wait_for_run(api: client.ApiClient, run_id: str, user: str, timeout: float) -> dict[str, Any]:
    """The run as the API server reports it once it has ended (the persistence agent's report)."""
    def ended() -> tuple[bool, dict[str, Any]]:
        run = kfp_call(api, "GET", f"/apis/v2beta1/runs/{run_id}", user)
        return run.get("state") in ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"), run

    seen: dict[str, Any] = wait_until(ended, timeout=timeout, interval=5, what=f"pipeline run {run_id} to end")
    return seen


def pod_report(api: client.ApiClient, namespace: str, prefix: str, image: str, args: list[str],
               env: list[dict[str, Any]] | None = None, timeout: float = 300) -> dict[str, Any]:
    """Run a short pod (python3 -c ARGS...) in `namespace`; its last log line, as JSON."""
    core = client.CoreV1Api(api)
    name = unique_name(prefix)
    core.create_namespaced_pod(namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "probe", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["python3", "-c", *args],
            "env": env or [], "resources": POD_RESOURCES}]}})
    try:
        def done() -> tuple[bool, str]:
            phase = core.read_namespaced_pod(name, namespace).status.phase
            return phase in ("Succeeded", "Failed"), phase

        wait_until(done, timeout=timeout, interval=2, what=f"pod {namespace}/{name} to finish")
        # Unparsed: the client turns a log that is one JSON document into a dict's repr.
        log = core.read_namespaced_pod_log(name, namespace, _preload_content=False).data.decode()
        lines = [line for line in log.splitlines() if line.startswith("{")]
        assert lines, log[-2000:]
        report: dict[str, Any] = json.loads(lines[-1])
        return report
    finally:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)


def secret_env(secret: str) -> list[dict[str, Any]]:
    return [{"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            for var, key in (("ACCESS", "accesskey"), ("SECRET", "secretkey"))]
