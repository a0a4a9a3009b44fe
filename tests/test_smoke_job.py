"""The in-cluster smoke Job (T0): its objects keep passwords out of the Job's spec and the outputs'
kubeconfig out of the cluster, its RBAC grants no write beyond what the checks make, results
survive the trip through a log, and the pod's kubeconfig is its own ServiceAccount's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from infra.smokejob.job import NAMESPACE, RULES, JobSpec, gateway_url, job_objects
from infra.smokejob.stack import password_environment
from smoke_tests.incluster import framed, service_account_kubeconfig, unframe

OUTPUTS = {"kubeconfig": "apiVersion: v1\nusers: [{user: {token: s3cret-token}}]",
           "ingress": {"namespace": "kfstack-gateway", "service": "standin-gateway", "port": 80, "kind": "standin"},
           "users": [{"email": "user@example.com", "profile": "kubeflow-user-example-com"}],
           "components": ["dex", "oauth2-proxy", "kserve"], "clusterProvider": "kind", "clusterName": "kflocal"}
SPEC = JobSpec(image="kfstack/smoke-suite:abc", outputs=OUTPUTS,
               environment={"KFSTACK_USER_PASSWORD": "pa55-word"}, args=["-m", "login"], run_id="r1")


def _by_kind() -> dict[str, dict]:
    return {o["kind"]: o for o in job_objects(SPEC)}


def test_passwords_live_in_a_secret_and_the_kubeconfig_nowhere() -> None:
    objects = _by_kind()
    assert objects["Secret"]["stringData"] == {"KFSTACK_USER_PASSWORD": "pa55-word"}
    rest = yaml.safe_dump_all([o for o in job_objects(SPEC) if o["kind"] != "Secret"])
    assert "pa55-word" not in rest and "s3cret-token" not in rest
    outputs = json.loads(objects["ConfigMap"]["data"]["outputs.json"])
    assert "kubeconfig" not in outputs and outputs["components"] == OUTPUTS["components"]


def test_the_job_reaches_the_gateway_by_cluster_dns_and_runs_once() -> None:
    job = _by_kind()["Job"]
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert gateway_url(OUTPUTS) == "http://standin-gateway.kfstack-gateway.svc.cluster.local:80"
    assert container["args"] == ["--stack-outputs", "/etc/kfstack-smoke/outputs.json",
                                 "--endpoint", gateway_url(OUTPUTS), "-m", "login"]
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert container["securityContext"]["runAsNonRoot"] is True
    ns = _by_kind()["Namespace"]
    assert ns["metadata"]["name"] == NAMESPACE
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_rbac_writes_only_what_the_checks_make() -> None:
    writes = {(g, r) for rule in RULES if {"create", "delete", "patch", "update"} & set(rule["verbs"])
              for g in rule["apiGroups"] for r in rule["resources"]}
    assert not any(r in ("*", "clusterroles", "clusterrolebindings", "rolebindings", "roles") for _, r in writes)
    assert ("apps", "deployments") not in writes and ("kubeflow.org", "profiles") not in writes
    binding = _by_kind()["ClusterRoleBinding"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kfstack-smoke", "namespace": NAMESPACE}]
    assert binding["metadata"]["name"] == _by_kind()["ClusterRole"]["metadata"]["name"] == "kfstack-smoke-r1"


def test_results_survive_the_log_and_a_cut_log_gives_none() -> None:
    junit = b'<?xml version="1.0"?><testsuites><testsuite name="s" tests="3"/></testsuites>' * 40
    log = "pytest output\n" + framed("junit.xml", junit) + "\n" + framed("smoke.md", b"# report\n") + "\n"
    assert unframe(log, "junit.xml") == junit and unframe(log, "smoke.md") == b"# report\n"
    assert unframe(log.split("----- kfstack-smoke junit.xml end")[0], "junit.xml") is None


def test_the_pods_kubeconfig_is_its_service_accounts(tmp_path: Path) -> None:
    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text("tok-en\n")
    (account / "ca.crt").write_text("CA")
    path = service_account_kubeconfig(tmp_path, account, {"KUBERNETES_SERVICE_HOST": "fd00::1",
                                                          "KUBERNETES_SERVICE_PORT": "443"})
    config = yaml.safe_load(path.read_text())
    assert config["clusters"][0]["cluster"] == {"server": "https://[fd00::1]:443",
                                                "certificate-authority": str(account / "ca.crt")}
    assert config["users"][0]["user"] == {"token": "tok-en"}
    assert path.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(("env", "expected"), [
    ({"KFSTACK_PASSWORD_0": "a", "KFSTACK_PASSWORD_1": "b", "OTHER": "x"}, {"KFSTACK_PASSWORD_0": "a",
                                                                          "KFSTACK_PASSWORD_1": "b"}),
    ({"KFSTACK_USER_PASSWORD": "c", "KFSTACK_PASSWORD_5": "ignored"}, {"KFSTACK_USER_PASSWORD": "c"}),
])
def test_only_the_suites_password_variables_are_passed(env: dict[str, str], expected: dict[str, str]) -> None:
    assert password_environment(2, env) == expected
