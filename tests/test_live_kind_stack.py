"""T3 here: `pulumi up` of the kind-local stack file through the project's whole program.

The stack's cluster comes from the node image built here; upstream cert-manager, the profile
controller and KFAM run as real pods from images built here. In order, on one stack: up;
cert-manager's CA injected and its webhook validating for real; the real controller reconciles
the configured Profile into its namespace; the namespaces carry the Pod Security levels upstream
sets, and the real admission refuses a pod that breaks them; a no-op preview changes nothing;
destroy leaves no cluster, container or route. NOT RUN (skipped with the reason) where no
container runtime, node image or component image can be had.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException
from pulumi import automation as auto

from infra.automation import TempStack, temp_stack
from infra.config import PROJECT, parse_stack_config
from infra.manifests.render import render
from infra.paths import REPO_ROOT
from infra.run import run
from infra.runtime import docker, routes
from infra.wait import wait_until
from tests.helpers import require_toolchain
from tests.live_fixtures import container_runtime  # noqa: F401 - a fixture

pytestmark = [pytest.mark.live, pytest.mark.slow]
STACK_FILE = REPO_ROOT / "stacks" / "Pulumi.kind-local.yaml"
PROFILE_NAMESPACE = "kubeflow-user-example-com"


def _quiet(_line: str) -> None:
    return None


def stack_raw(cluster_name: str) -> dict[str, Any]:
    """The stack file's config, on a cluster name of this run's own."""
    config = yaml.safe_load(STACK_FILE.read_text())["config"]
    raw = {key.removeprefix(f"{PROJECT}:"): value for key, value in config.items()}
    raw["cluster"]["name"] = cluster_name
    return raw


@dataclass
class KindStack:
    ts: TempStack
    name: str
    raw: dict[str, Any]

    def api(self) -> client.ApiClient:
        kubeconfig = yaml.safe_load(self.ts.stack.outputs()["kubeconfig"].value)
        return kube_config.new_client_from_config_dict(kubeconfig)


@pytest.fixture(scope="module")
def kind_stack(container_runtime: docker.RuntimeState, manifests_tree: Path,  # noqa: F811 - the shared fixture
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[KindStack]:
    require_toolchain("kind", "pulumi", "kubectl", "kustomize")
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("the node image's source route needs root and debootstrap")
    from infra.nodeimage.build import build_node_image
    from infra.nodeimage.components import build_component_images
    from infra.toolchain.model import ToolchainError

    build_node_image(say=_quiet)
    try:
        build_component_images(say=_quiet)  # cached after ./scripts/setup; sources needed only to build
    except ToolchainError as exc:
        pytest.skip(f"the component images cannot be built here: {exc}")
    base = tmp_path_factory.mktemp("kindstack")
    ts = temp_stack(base, prefix="kl", env={"KFSTACK_MANIFESTS": str(manifests_tree)})
    name = f"kfkl-{secrets.token_hex(3)}"
    stack = KindStack(ts, name, stack_raw(name))
    ts.set_config(stack.raw)
    yield stack
    with contextlib.suppress(auto.CommandError):
        ts.stack.destroy(on_output=_quiet)
    from infra.clusters.kind import KindClusterProvider

    if KindClusterProvider().cluster_exists({"name": name}):
        KindClusterProvider().delete_cluster({"name": name})
    ts.stack.workspace.remove_stack(ts.name, force=True)


def test_up_runs_the_upstream_profile_controller(kind_stack: KindStack) -> None:
    result = kind_stack.ts.stack.up(on_output=_quiet, parallel=64)
    assert result.summary.result == "succeeded"
    apps = client.AppsV1Api(kind_stack.api())
    deployment = apps.read_namespaced_deployment("profiles-deployment", "kubeflow")
    assert deployment.status.available_replicas == 1
    images = {c.image for c in deployment.spec.template.spec.containers}
    assert images == {"ghcr.io/kubeflow/kubeflow/profile-controller:v1.10.0",
                      "ghcr.io/kubeflow/kubeflow/kfam:v1.10.0"}


def test_cert_manager_runs_injects_its_ca_and_its_webhook_validates(kind_stack: KindStack) -> None:
    api = kind_stack.api()
    apps = client.AppsV1Api(api)
    available = {d.metadata.name: d.status.available_replicas
                 for d in apps.list_namespaced_deployment("cert-manager").items}
    assert available == {"cert-manager": 1, "cert-manager-cainjector": 1, "cert-manager-webhook": 1}
    hooks = client.AdmissionregistrationV1Api(api).read_validating_webhook_configuration("cert-manager-webhook")
    assert all(h.client_config.ca_bundle for h in hooks.webhooks)  # injected by the real cainjector
    custom = client.CustomObjectsApi(api)

    def issuer_ready() -> tuple[bool, Any]:
        issuer = custom.get_cluster_custom_object("cert-manager.io", "v1", "clusterissuers",
                                                  "kubeflow-self-signing-issuer")
        conditions = {c["type"]: c["status"] for c in issuer.get("status", {}).get("conditions", [])}
        return conditions.get("Ready") == "True", conditions

    wait_until(issuer_ready, timeout=120, interval=2, what="Kubeflow's self-signing ClusterIssuer to be Ready")
    too_short = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "too-short"},
                 "spec": {"secretName": "too-short", "duration": "1m", "dnsNames": ["a.example"],
                          "issuerRef": {"name": "kubeflow-self-signing-issuer", "kind": "ClusterIssuer"}}}
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object("cert-manager.io", "v1", "kubeflow", "certificates", too_short)
    message = json.loads(refused.value.body)["message"]
    assert refused.value.status == 403
    assert message.startswith('admission webhook "webhook.cert-manager.io" denied the request: spec.duration'), message


def test_the_real_controller_reconciles_the_profile(kind_stack: KindStack) -> None:
    api = kind_stack.api()
    rbac = client.RbacAuthorizationV1Api(api)

    def reconciled() -> tuple[bool, Any]:
        try:
            binding = rbac.read_namespaced_role_binding("namespaceAdmin", PROFILE_NAMESPACE)
        except ApiException as exc:
            return False, exc.status
        return True, [s.name for s in binding.subjects or []]

    subjects = wait_until(reconciled, timeout=180, interval=2,
                          what=f"the profile controller to set up {PROFILE_NAMESPACE}")
    assert subjects == ["user@example.com"]


def test_namespaces_carry_upstreams_pod_security_and_admission_enforces_it(kind_stack: KindStack,
                                                                          manifests_tree: Path) -> None:
    cfg = parse_stack_config(kind_stack.ts.name, kind_stack.raw, set())
    wanted = {o["metadata"]["name"]: o["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce")
              for o in render(cfg, manifests_tree).objects if o["kind"] == "Namespace"}
    core = client.CoreV1Api(kind_stack.api())
    live = {name: core.read_namespace(name).metadata.labels.get("pod-security.kubernetes.io/enforce")
            for name in wanted}
    assert live == wanted and wanted["kubeflow"] == "restricted"
    assert core.read_namespace(PROFILE_NAMESPACE).metadata.labels["pod-security.kubernetes.io/enforce"] == "baseline"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "breaks-baseline"},
           "spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}
    for namespace in ("kubeflow", PROFILE_NAMESPACE):
        with pytest.raises(ApiException) as refused:
            core.create_namespaced_pod(namespace, pod)
        assert refused.value.status == 403 and "violates PodSecurity" in str(refused.value.body), namespace


def test_second_up_changes_nothing(kind_stack: KindStack) -> None:
    preview = kind_stack.ts.stack.preview(on_output=_quiet)
    assert {k: v for k, v in preview.change_summary.items() if k != "same"} == {}, preview.stdout


def test_destroy_leaves_no_cluster_container_or_route(kind_stack: KindStack) -> None:
    kind_stack.ts.stack.destroy(on_output=_quiet)
    from infra.toolchain import tool_path

    assert kind_stack.name not in run([tool_path("kind"), "get", "clusters"], timeout=60).stdout.split()
    assert run(["docker", "ps", "-aq", "--filter", f"label=io.x-k8s.kind.cluster={kind_stack.name}"],
               timeout=60).stdout.split() == []
    assert routes.held_by(f"kind:{kind_stack.name}") == []
