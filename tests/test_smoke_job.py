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

OUTPUTS = {"contractVersion": 1, "kubeconfig": "apiVersion: v1\nusers: [{user: {token: s3cret-token}}]",
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


# Distribution -> the module it installs, where the names differ.
MODULE_OF = {"pyyaml": "yaml", "scikit-learn": "sklearn"}
# Modules a distribution brings with it as its own dependency.
BROUGHT_BY = {"pydantic": {"pydantic_core"}, "kubernetes": {"urllib3"}, "requests": {"urllib3"}}


def _imports_at_load(path: Path) -> set[str]:
    """Top-level names a module imports when it is loaded (not inside functions: those load lazily)."""
    import ast

    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_suite_image_installs_what_the_plugin_loads() -> None:
    """The in-cluster Job runs `pytest -p smoke_tests.plugin` in an image holding only the suite's
    distribution and its dependencies: every third-party module the plugin's modules (and the suite
    modules they load) import at load time must be installed there, and no module of the Pulumi
    program is. (A settings model on pydantic once broke it.)"""
    import sys

    from infra.smokejob.image import SOURCES, suite_requirements

    assert SOURCES == ("constraints.txt", "smoke_tests")  # nothing of the Pulumi program goes in
    requirements = suite_requirements()
    assert not {"pulumi", "pulumi-kubernetes", "pydantic"} & set(requirements), requirements
    repo = Path(__file__).resolve().parents[1]
    installed = {MODULE_OF.get(r, r) for r in requirements}
    installed |= {m for r in requirements for m in BROUGHT_BY.get(r, set())}
    seen: set[Path] = set()
    todo = [repo / "smoke_tests" / "plugin.py"]
    missing: dict[str, str] = {}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports_at_load(path):
            assert name != "infra", f"{path.relative_to(repo)} loads the Pulumi program, which the image lacks"
            if name == "smoke_tests":
                continue
            if name in sys.stdlib_module_names or name == "__future__":
                continue
            if name not in installed:
                missing.setdefault(name, str(path.relative_to(repo)))
        # Follow the project's own modules the file loads.
        import ast

        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            module = ""
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                module = node.module
            elif isinstance(node, ast.Import):
                module = node.names[0].name
            if module.split(".")[0] == "smoke_tests":
                base = repo / module.replace(".", "/")
                for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                    if candidate.is_file():
                        todo.append(candidate)
                if isinstance(node, ast.ImportFrom):
                    for alias in node.names:
                        sub = base / f"{alias.name}.py"
                        if sub.is_file():
                            todo.append(sub)
    assert missing == {}, f"not among the suite's dependencies (smoke_tests/pyproject.toml): {missing}"


def test_a_run_id_that_reads_as_a_number_stays_a_string_for_kubectl() -> None:
    """`secrets.token_hex` can give `5e123456`: PyYAML leaves it unquoted, and kubectl's YAML reads it
    as a float, refusing the labels ("cannot unmarshal number ... labels of type string"; seen on kind)."""
    from infra.smokejob.job import apply_text

    spec = JobSpec(**{**SPEC.__dict__, "run_id": "5e123456"})
    text = apply_text(job_objects(spec))
    docs = [json.loads(d) for d in text.split("---\n") if d.strip()]
    assert docs == job_objects(spec)
    assert all(isinstance(v, str) for d in docs for v in d["metadata"].get("labels", {}).values())
    assert '"5e123456"' in text


def test_the_jobs_namespace_may_read_the_store_where_network_policy_is_enforced() -> None:
    """Upstream's store policy admits only profile namespaces, kubeflow and Istio's; the Job's own
    policy admits its namespace to the store's pods, labelled so that cleanup removes it."""
    from infra.smokejob.job import LABELS, STORE_NAMESPACE

    policy = _by_kind()["NetworkPolicy"]
    assert policy["metadata"]["namespace"] == STORE_NAMESPACE == "kubeflow"
    assert LABELS.items() <= policy["metadata"]["labels"].items()
    (expression,) = policy["spec"]["podSelector"]["matchExpressions"]
    assert expression["key"] == "app" and {"seaweedfs", "minio"} <= set(expression["values"])
    assert policy["spec"]["ingress"] == [{"from": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}}]}]
