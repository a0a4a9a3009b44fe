"""What the live modules that bring up a shipped stack file share (kind-local, minikube-local): the
stack file's config on a cluster name of the run's own, the smoke suite run against the stack as a
user runs it (port-forward) and as the in-cluster Job, its JUnit read check by check, and the
readiness and no-op checks every such stack answers to."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import yaml
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

from infra.automation import TempStack
from infra.config import PROJECT, parse_stack_config
from infra.paths import REPO_ROOT
from smoke_tests.run import run
from smoke_tests.wait import wait_until

# What the local stacks run from images built here, by namespace: Deployment -> ready replicas
# (upstream's counts); kind-local adds upstream's jwks proxy of its kind overlay.
LOCAL_DEPLOYMENTS = {
    "cert-manager": {"cert-manager": 1, "cert-manager-cainjector": 1, "cert-manager-webhook": 1},
    "auth": {"dex": 1},
    "oauth2-proxy": {"oauth2-proxy": 2},
    "kubeflow": {"profiles-deployment": 1, "kserve-controller-manager": 1,
                 "kserve-localmodel-controller-manager": 1,
                 # Kubeflow Pipelines: what a v2 run needs (the stacks leave out the rest).
                 "ml-pipeline": 1, "ml-pipeline-persistenceagent": 1, "workflow-controller": 1, "mysql": 1,
                 "seaweedfs": 1, "metadata-grpc-deployment": 1, "kubeflow-pipelines-profile-controller": 1},
    "kfstack-gateway": {"standin-gateway": 1},
}
# What the smoke suite proves on a stack with Kubeflow Pipelines: the pipeline and artifact-store checks.
PIPELINE_CHECKS = ("test_experiment_create_and_delete", "test_hello_pipeline_succeeds",
                   "test_machine_token_reads_the_run", "test_sample_pipeline_succeeds",
                   "test_namespace_lists_its_pipeline_root", "test_namespace_key_cannot_list_another_namespace",
                   "test_iris_run_exported_a_working_model", "test_foreign_token_is_forbidden_on_pipelines",
                   "test_no_token_is_rejected_on_pipelines", "test_foreign_token_cannot_create_runs_in_the_namespace")
# Readiness, login, inference (the models the sample pipelines trained, served by KServe) and isolation.
READINESS_CHECKS = ("test_every_workload_ready", "test_nothing_crash_looping", "test_every_webhook_has_endpoints")
LOGIN_CHECKS = ("test_login_gives_a_session_the_dashboard_accepts", "test_wrong_password_gives_no_session",
                "test_no_session_is_sent_to_login")
INFERENCE_CHECKS = ("test_model_predicts", "test_served_iris_is_the_trained_model")
ISOLATION_CHECKS = ("test_owner_token_is_accepted", "test_foreign_token_is_forbidden_on_model",
                    "test_no_token_is_rejected_on_model", "test_forged_token_is_rejected_on_model",
                    "test_foreign_token_is_forbidden_on_pipelines", "test_no_token_is_rejected_on_pipelines",
                    "test_foreign_token_cannot_create_runs_in_the_namespace")
PORT_FORWARD_CHECKS = (*PIPELINE_CHECKS, *READINESS_CHECKS, "test_gateway_answers_through_forward",
                       "test_forward_restarts_after_kubectl_exits", *LOGIN_CHECKS, *INFERENCE_CHECKS,
                       *ISOLATION_CHECKS)
# What the in-cluster Job proves of readiness, login, inference and isolation (and with Pipelines' checks).
JOB_CAPABILITY_CHECKS = ("test_every_workload_ready", "test_login_gives_a_session_the_dashboard_accepts",
                         "test_model_predicts", "test_foreign_token_is_forbidden_on_model",
                         "test_owner_token_is_accepted")
JOB_CHECKS = (*JOB_CAPABILITY_CHECKS, *PIPELINE_CHECKS)
# The smoke suite's markers for readiness, login, inference and isolation (pytest -m).
FOUR_CAPABILITIES = "readiness or login or inference or isolation"
FOUR_CAPABILITY_CHECKS = (*READINESS_CHECKS, *LOGIN_CHECKS, *INFERENCE_CHECKS, *ISOLATION_CHECKS)


OWNER = "user@example.com"  # the stacks' demo user, owner of its profile
PROFILE_NAMESPACE = "kubeflow-user-example-com"
RUNTIME_IMAGE = "kfstack/kfp-runtime:py3.11-kfp2.15.0"  # the stacks' step image (pipelineImage output)


def _quiet(_line: str) -> None:
    return None


def component_images_or_skip() -> None:
    """The upstream images the local stacks run, built here (cached after ./scripts/setup: sources
    are needed only to build); NOT RUN where they cannot be built."""
    import pytest

    from infra.nodeimage.build import NodeImageError
    from infra.nodeimage.components import build_component_images
    from infra.toolchain.model import ToolchainError

    try:
        build_component_images(say=_quiet)
    except (ToolchainError, NodeImageError) as exc:
        pytest.skip(f"NOT RUN: the component images cannot be built here: {exc}")


def add_suite_image(preload: list[str]) -> None:
    """The in-cluster Job's image into a preload list, so it goes into the nodes with the stack's own;
    where it cannot be built, the Job's test builds it itself and fails with the reason."""
    import contextlib

    from infra.nodeimage.build import NodeImageError
    from infra.nodeimage.recipes import RecipeError
    from infra.smokejob.image import build_suite_image
    from smoke_tests.run import CommandError

    with contextlib.suppress(CommandError, NodeImageError, RecipeError):
        preload.append(build_suite_image(say=_quiet))


def stack_raw(stack_file: Path, cluster_name: str) -> dict[str, Any]:
    """A shipped stack file's config, on a cluster name of this run's own."""
    config = yaml.safe_load(stack_file.read_text())["config"]
    raw = {key.removeprefix(f"{PROJECT}:"): value for key, value in config.items()}
    raw["cluster"]["name"] = cluster_name
    return raw


@dataclass
class LiveStack:
    """A shipped stack file brought up by a live module: its temporary stack, cluster name and config."""

    ts: TempStack
    name: str
    raw: dict[str, Any]

    def api(self) -> client.ApiClient:
        kubeconfig = yaml.safe_load(self.ts.stack.outputs()["kubeconfig"].value)
        return kube_config.new_client_from_config_dict(kubeconfig)

    def outputs(self) -> dict[str, Any]:
        return {key: value.value for key, value in self.ts.stack.outputs().items()}


def outcomes(junit: Path) -> dict[str, str]:
    """Each check's outcome by its test's name (parametrized ids kept), whatever the JUnit family."""
    found_outcomes = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        found = [tag for tag in ("failure", "error", "skipped") if case.find(tag) is not None]
        found_outcomes[case.get("name", "")] = {"failure": "failed"}.get(found[0], found[0]) if found else "passed"
    return found_outcomes


def must_pass(found: dict[str, str], prefixes: Sequence[str]) -> None:
    """Nothing failed, and every check named by a prefix ran and passed."""
    failed = {name: outcome for name, outcome in found.items() if outcome in ("failed", "error")}
    assert failed == {}, failed
    for prefix in prefixes:
        ran = {name: outcome for name, outcome in found.items() if name.startswith(prefix)}
        assert ran and set(ran.values()) == {"passed"}, (prefix, ran)


def suite_environment(stack: LiveStack) -> dict[str, str]:
    """The stack's users' passwords, as the smoke suite reads them."""
    cfg = parse_stack_config(stack.ts.name, stack.raw, set())
    passwords = {f"KFSTACK_PASSWORD_{i}": user.password.reveal() for i, user in enumerate(cfg.auth.users)
                 if user.password}
    # No internet here for the MNIST archive: scikit-learn's bundled digits, as the local target trains.
    return {**passwords, "KFSTACK_MNIST_SOURCE": "digits"}


def wait_every_pod_ready(api: client.ApiClient, timeout: float = 120) -> None:
    core = client.CoreV1Api(api)

    def all_ready() -> tuple[bool, Any]:
        waiting = []
        for pod in core.list_pod_for_all_namespaces().items:
            if pod.status.phase == "Succeeded":
                continue
            conditions = {c.type: c.status for c in pod.status.conditions or []}
            if conditions.get("Ready") != "True":
                waiting.append(f"{pod.metadata.namespace}/{pod.metadata.name} ({pod.status.phase})")
        return not waiting, waiting

    wait_until(all_ready, timeout=timeout, interval=2, what="every pod of the cluster to be Ready")


def ready_replicas(api: client.ApiClient, namespaces: Sequence[str]) -> dict[str, dict[str, int]]:
    apps = client.AppsV1Api(api)
    return {ns: {d.metadata.name: d.status.ready_replicas or 0 for d in apps.list_namespaced_deployment(ns).items}
            for ns in namespaces}


def suite_through_port_forward(stack: LiveStack, tmp_path: Path, prefixes: Sequence[str],
                               select: Sequence[str] = ()) -> None:
    """`pytest smoke_tests --stack-outputs` as a user runs it (a supervised port-forward to the stand-in
    gateway), with pytest's own `select` arguments (-m, -k); the checks `prefixes` name must pass."""
    outputs = stack.outputs()
    assert outputs["ingress"]["kind"].startswith("standin:"), outputs["ingress"]
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    os.chmod(tmp_path / "outputs.json", 0o600)  # holds the kubeconfig
    junit = tmp_path / "smoke.xml"
    env = {**os.environ, **suite_environment(stack)}
    env.pop("KFSTACK_USER_PASSWORD", None)
    result = run([sys.executable, "-m", "pytest", "smoke_tests", "--stack-outputs", str(tmp_path / "outputs.json"),
                  f"--junitxml={junit}", "-o", "junit_family=xunit1", "-p", "no:cacheprovider", "-q", *select],
                 cwd=REPO_ROOT, env=env, timeout=1800, check=False)
    must_pass(outcomes(junit), prefixes)
    assert result.returncode == 0, result.stdout[-3000:]


def suite_as_job(stack: LiveStack, tmp_path: Path, nodes: Callable[[], list[str]], prefixes: Sequence[str],
                 select: Sequence[str] = ()) -> None:
    """The suite's image built here, loaded into the stack's nodes (a check by ID where the fixture
    preloaded it), run as the project's Job (its ServiceAccount and least-write RBAC) against the
    gateway's Service by cluster DNS; the JUnit comes back through the Job's log, the checks
    `prefixes` name must pass, and nothing of the Job is left afterwards."""
    from infra.clusters.preload import load_lacking
    from infra.smokejob.image import build_suite_image
    from infra.smokejob.job import NAMESPACE, JobSpec, SmokeJob, write_results
    from infra.toolchain import tool_path

    outputs = stack.outputs()
    image = build_suite_image(say=_quiet)
    load_lacking(nodes(), [image], _quiet)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(outputs.pop("kubeconfig"))
    job = SmokeJob(tool_path("kubectl"), kubeconfig, say=_quiet)
    result = job.run(JobSpec(image=image, outputs=outputs, environment=suite_environment(stack), args=tuple(select)),
                     timeout=1800)
    written = write_results(result, tmp_path / "report")
    assert "junit.xml" in result.files, result.log[-3000:]
    must_pass(outcomes(tmp_path / "report" / "junit.xml"), prefixes)
    assert result.succeeded and written
    core = client.CoreV1Api(stack.api())

    def namespace_gone() -> tuple[bool, Any]:
        try:
            return False, core.read_namespace(NAMESPACE).status.phase
        except ApiException as exc:
            return exc.status == 404, exc.status

    wait_until(namespace_gone, timeout=300, interval=3, what=f"the Job's namespace {NAMESPACE} to go")


def _network_policy_enforcers(api: client.ApiClient) -> list[str]:
    """DaemonSets of the NetworkPolicy implementations a local cluster may run."""
    known = ("kindnet", "calico", "cilium", "kube-network-policies", "antrea", "weave")
    return [d.metadata.name for d in client.AppsV1Api(api).list_namespaced_daemon_set("kube-system").items
            if d.metadata.name.startswith(known)]


def forged_header_to_the_api_server_is_dropped(api: client.ApiClient, node: str) -> None:
    """A pod of the profile's namespace calls ml-pipeline directly with a forged `kubeflow-userid`:
    the stack's NetworkPolicy admits only the kubeflow namespace and the gateway, and what enforces
    it (the kube-network-policies agent the stack runs where the network enforces none) drops it.
    NOT RUN where nothing enforces NetworkPolicy or the host's kernel cannot (node container `node`)."""
    import pytest

    from tests.live_kfp import FORGED_CALL, pod_report

    enforcers = _network_policy_enforcers(api)
    if not enforcers:
        pytest.skip("NOT RUN: this cluster's network does not enforce NetworkPolicy (a CNI that enforces none, "
                    "and no networkPolicy enforcer in the cluster's settings)")
    if enforcers == ["kube-network-policies"]:
        from infra.clusters.netpolicy import enforcement_problem

        agent = client.AppsV1Api(api).read_namespaced_daemon_set("kube-network-policies", "kube-system")
        assert agent.status.number_ready == agent.status.desired_number_scheduled >= 1, agent.status
        problem = enforcement_problem(node)
        if problem:
            pytest.skip(f"NOT RUN: this host cannot enforce NetworkPolicy: {problem}")
    url = f"http://ml-pipeline.kubeflow.svc.cluster.local:8888/apis/v2beta1/experiments?namespace={PROFILE_NAMESPACE}"
    report = pod_report(api, PROFILE_NAMESPACE, "kfstack-forge", RUNTIME_IMAGE, [FORGED_CALL, url, OWNER])
    assert "refused" in report, report


def up_changes(stack: LiveStack) -> dict[str, int]:
    """What a `pulumi up` with the same config changed (`same` left out): {} for a no-op."""
    result = stack.ts.stack.up(on_output=_quiet, parallel=64)
    return {k: v for k, v in (result.summary.resource_changes or {}).items() if k != "same"}
