"""The smoke suite's Kubernetes code against a real API server (KWOK: real kube-apiserver, etcd and
controllers; simulated nodes and pods). Readiness, webhook endpoints, ServiceAccount tokens, the
namespace and object factories' cleanup, and the readiness checks themselves run here unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smoke_tests.kube import (
    api_client,
    crash_looping,
    kubeconfig_secrets,
    kubernetes_version,
    service_account_token,
    webhooks_without_endpoints,
    workload_states,
)
from smoke_tests.target import KubeAccess
from smoke_tests.wait import wait_until

pytestmark = [pytest.mark.sim, pytest.mark.slow]

CHECKS = Path(__file__).resolve().parent.parent / "smoke_tests" / "checks"


@pytest.fixture(scope="module")
def kwok(sim_kubeconfig: Path) -> KubeAccess:
    return KubeAccess(sim_kubeconfig)


@pytest.fixture(scope="module")
def api(kwok: KubeAccess) -> Any:
    return api_client(kwok)


@pytest.fixture(scope="module")
def kubeflow_namespace(api: Any) -> Iterator[str]:
    """The `kubeflow` namespace the checks look in; it and what the module adds beside it (the
    gateway's namespace, the Profile CRD) go at the end: the session's other modules share the
    cluster (tests/conftest.py: sim_kubeconfig)."""
    from kubernetes import client

    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="kubeflow")))
    labels = {"app": "ml-pipeline"}
    apps.create_namespaced_deployment("kubeflow", client.V1Deployment(
        metadata=client.V1ObjectMeta(name="ml-pipeline"),
        spec=client.V1DeploymentSpec(
            replicas=1, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="api", image="fake")])))))
    yield "kubeflow"
    for delete, name in ((core.delete_namespace, "kubeflow"), (core.delete_namespace, "istio-system"),
                         (client.ApiextensionsV1Api(api).delete_custom_resource_definition, "profiles.kubeflow.org")):
        try:
            delete(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


def test_version_and_kubeconfig_credentials(kwok: KubeAccess) -> None:
    assert kubernetes_version(kwok) == "v1.34.2"
    assert kubeconfig_secrets("users:\n- user:\n    token: abc123\n    client-key-data: S0VZ\n") == \
        ["abc123", "S0VZ"]


def test_a_deployment_becomes_ready_and_nothing_crash_loops(api: Any, kubeflow_namespace: str) -> None:
    def check() -> tuple[bool, list[Any]]:
        seen = workload_states(api, [kubeflow_namespace])
        return bool(seen) and all(s.ready for s in seen), seen

    states = wait_until(check, timeout=120, interval=1, what="ml-pipeline to be ready")
    assert [(s.kind, s.name, s.ready) for s in states] == [("Deployment", "ml-pipeline", True)]
    assert crash_looping(api, [kubeflow_namespace]) == []


def test_a_webhook_without_endpoints_is_reported(api: Any, kubeflow_namespace: str) -> None:
    from kubernetes import client

    reg, core = client.AdmissionregistrationV1Api(api), client.CoreV1Api(api)
    reg.create_validating_webhook_configuration(client.V1ValidatingWebhookConfiguration(
        metadata=client.V1ObjectMeta(name="kfsmoke-webhook"),
        webhooks=[client.V1ValidatingWebhook(
            name="validate.kfsmoke.example.com", admission_review_versions=["v1"], side_effects="None",
            failure_policy="Ignore", rules=[client.V1RuleWithOperations(
                api_groups=["kfsmoke.example.com"], api_versions=["v1"], operations=["CREATE"],
                resources=["widgets"])],
            client_config=client.AdmissionregistrationV1WebhookClientConfig(
                service=client.AdmissionregistrationV1ServiceReference(
                    namespace=kubeflow_namespace, name="kfsmoke-webhook", port=443)))]))
    try:
        assert webhooks_without_endpoints(api) == [
            "service kubeflow/kfsmoke-webhook has no ready endpoints (used by validating "
            "kfsmoke-webhook/validate.kfsmoke.example.com)"]
        core.create_namespaced_endpoints(kubeflow_namespace, client.V1Endpoints(
            metadata=client.V1ObjectMeta(name="kfsmoke-webhook"),
            subsets=[client.V1EndpointSubset(addresses=[client.V1EndpointAddress(ip="10.0.0.9")],
                                             ports=[client.CoreV1EndpointPort(port=443)])]))
        assert webhooks_without_endpoints(api) == []
    finally:
        reg.delete_validating_webhook_configuration("kfsmoke-webhook")


def test_service_account_token_is_a_jwt(api: Any) -> None:
    from kubernetes import client

    client.CoreV1Api(api).create_namespaced_service_account(
        "default", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="default-editor")))
    token = service_account_token(api, "default", "default-editor")
    assert token.count(".") == 2
    assert token.startswith("eyJ")


CLUSTER_CONFTEST = '''
import pytest
from pathlib import Path
from smoke_tests.fixtures.target import TARGET_KEY
from smoke_tests.target import KubeAccess, Target, TargetUser

@pytest.fixture(scope="session")
def kf_target(pytestconfig):
    target = Target(kind="cluster", label="kwok", gateway_url="http://127.0.0.1:9",
                    users=(TargetUser("user@example.com", "kubeflow-user-example-com", None),),
                    kube=KubeAccess(Path({kubeconfig!r})))
    pytestconfig.stash[TARGET_KEY] = target
    return target
'''


def test_readiness_checks_and_factories_run_unchanged(pytester: pytest.Pytester, kwok: KubeAccess, api: Any,
                                                      kubeflow_namespace: str) -> None:
    from kubernetes import client

    pytester.makeconftest(CLUSTER_CONFTEST.format(kubeconfig=str(kwok.kubeconfig)))
    pytester.makepyfile(test_readiness=(CHECKS / "test_readiness.py").read_text(encoding="utf-8"))
    pytester.makepyfile(test_factories='''
from kubernetes import client

def test_factories(namespace_factory, k8s_object_factory, kube_api):
    ns = namespace_factory("kfsmoke")
    k8s_object_factory({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "default-editor", "namespace": ns}})
    open("created.txt", "w").write(ns)
    assert client.CoreV1Api(kube_api).read_namespace(ns).metadata.name == ns
''')
    result = pytester.runpytest("--endpoint", "http://127.0.0.1:9", "--wait-timeout", "120",
                                "--smoke-report", "smoke.md", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    created = (pytester.path / "created.txt").read_text()
    names = [ns.metadata.name for ns in client.CoreV1Api(api).list_namespace().items]
    assert created not in names  # deleted, and waited for, at the end of the session
    assert "**4 passed, 0 failed, 0 errors, 0 not run**" in (pytester.path / "smoke.md").read_text()


FAKE_PULUMI = '''#!{python}
import json, sys
if sys.argv[1:] != ["stack", "output", "--json", "--show-secrets", "-s", "fake"]:
    print("unexpected arguments:", sys.argv[1:], file=sys.stderr)
    sys.exit(2)
print({outputs!r})
'''


def test_stack_target_reads_outputs_forwards_and_checks(pytester: pytest.Pytester, kwok: KubeAccess,
                                                        kubeflow_namespace: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`--stack`: outputs from `pulumi stack output`, the kubeconfig in a private file, the gateway
    through the supervised port-forward (a fake kubectl that really listens, since KWOK's pods
    cannot carry traffic), then the portforward and readiness checks, unchanged."""
    import json
    import sys

    from tests.test_smoke_portforward import FAKE_KUBECTL

    outputs = {"contractVersion": 1, "kubeconfig": kwok.kubeconfig.read_text(encoding="utf-8"),
               "ingress": {"namespace": "istio-system", "service": "istio-ingressgateway", "port": 80},
               "users": [{"email": "user@example.com", "profile": "kubeflow-user-example-com"}],
               "kubeflowVersion": "v1.11.0", "components": ["istio", "dex", "oauth2-proxy", "pipelines", "kserve"],
               # Pods here are KWOK's and serve nothing, but this test's kubectl does: as if not simulated.
               "clusterProvider": "existing"}
    for name, text in (("pulumi", FAKE_PULUMI.format(python=sys.executable, outputs=json.dumps(outputs))),
                       ("kubectl", FAKE_KUBECTL.format(python=sys.executable))):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755)
        monkeypatch.setenv(f"KFSTACK_BIN_{name.upper()}", str(path))
    for check in ("test_portforward.py", "test_readiness.py"):
        pytester.makepyfile(**{check[:-3]: (CHECKS / check).read_text(encoding="utf-8")})
    result = pytester.runpytest("--stack", "fake", "--wait-timeout", "120", "--smoke-report", "smoke.md",
                                "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    report = (pytester.path / "smoke.md").read_text()
    assert "| target | stack fake |" in report
    assert "| Kubernetes | v1.34.2 |" in report
    assert "| Kubeflow | v1.11.0 |" in report
    assert "| cluster provider | existing |" in report
    assert "**5 passed, 0 failed, 0 errors, 0 not run**" in report


PROFILE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "profiles.kubeflow.org"},
    "spec": {"group": "kubeflow.org", "scope": "Cluster",
             "names": {"plural": "profiles", "singular": "profile", "kind": "Profile"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


def test_sim_stack_runs_readiness_objects_and_outputs_and_nothing_that_needs_pods(
        pytester: pytest.Pytester, kwok: KubeAccess, api: Any, kubeflow_namespace: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`pytest smoke_tests --stack <sim stack>` against a real API server: the stack's objects (a
    Profile, the gateway Service) and a ready Deployment pass the checks that need no pod; every
    check that needs one is NOT RUN with the reason, and no port-forward is started."""
    import json
    import sys

    from kubernetes import client

    client.ApiextensionsV1Api(api).create_custom_resource_definition(PROFILE_CRD)
    wait_until(lambda: (_served(api), None), timeout=60, interval=0.5, what="the Profile CRD to be served")
    client.CustomObjectsApi(api).create_cluster_custom_object("kubeflow.org", "v1", "profiles", {
        "apiVersion": "kubeflow.org/v1", "kind": "Profile", "metadata": {"name": "kubeflow-user-example-com"},
        "spec": {"owner": {"kind": "User", "name": "user@example.com"}}})
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="istio-system")))
    core.create_namespaced_service("istio-system", client.V1Service(
        metadata=client.V1ObjectMeta(name="istio-ingressgateway"),
        spec=client.V1ServiceSpec(selector={"app": "istio-ingressgateway"},
                                  ports=[client.V1ServicePort(name="http2", port=80)])))
    outputs = {"contractVersion": 1, "kubeconfig": kwok.kubeconfig.read_text(encoding="utf-8"),
               "ingress": {"namespace": "istio-system", "service": "istio-ingressgateway", "port": 80},
               "users": [{"email": "user@example.com", "profile": "kubeflow-user-example-com"}],
               "profiles": ["kubeflow-user-example-com"], "objectCount": 573,
               "kubeflowVersion": "v1.11.0", "components": ["istio", "profiles"], "clusterProvider": "sim"}
    pulumi = tmp_path / "pulumi"
    pulumi.write_text(FAKE_PULUMI.format(python=sys.executable, outputs=json.dumps(outputs)), encoding="utf-8")
    pulumi.chmod(0o755)
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(f"#!/bin/sh\ntouch {tmp_path / 'kubectl-ran'}\nexit 1\n", encoding="utf-8")
    kubectl.chmod(0o755)
    monkeypatch.setenv("KFSTACK_BIN_PULUMI", str(pulumi))
    monkeypatch.setenv("KFSTACK_BIN_KUBECTL", str(kubectl))
    monkeypatch.setenv("KFSTACK_USER_PASSWORD", "12341234")
    for check in sorted(CHECKS.glob("test_*.py")):
        pytester.makepyfile(**{check.stem: check.read_text(encoding="utf-8")})
    result = pytester.runpytest("--stack", "fake", "--wait-timeout", "120", "--smoke-report", "smoke.md",
                                "-p", "no:cacheprovider")
    report = (pytester.path / "smoke.md").read_text()
    assert not (tmp_path / "kubectl-ran").exists(), "a port-forward was tried on a simulated cluster"
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == outcomes.get("errors", 0) == 0, report
    assert outcomes["passed"] == 7, report  # readiness 3, objects 2, outputs 2
    for line in report.splitlines():
        if "| NOT RUN |" in line and "test_sample_pipelines_ran_with_kfp_local" not in line:
            assert "stack fake runs on a simulated cluster (clusterProvider: sim)" in line, line


def _served(api: Any) -> bool:
    from kubernetes import client

    try:
        client.CustomObjectsApi(api).list_cluster_custom_object("kubeflow.org", "v1", "profiles")
    except client.ApiException:
        return False
    return True
