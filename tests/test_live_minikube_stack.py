"""T3 here: `pulumi up` of the minikube-local stack file through the project's whole program.

A real minikube cluster (docker driver, containerd) from the kicbase image and preload built here,
with kind-local's upstream components from the same images built here, preloaded into the node by
the set `componentImages`, and NetworkPolicy enforced by kube-network-policies on minikube's bridge
CNI. In order, on one stack with a cluster name of this run's own: up, and every pod Ready; a
forged identity header from a profile's namespace dropped by the agent; the smoke suite's
readiness, login, inference and isolation checks through port-forward and as the in-cluster Job
(kind-local's module runs the whole suite both ways, pipeline checks too); a second up
changes nothing; destroy leaves no profile, container, network, volume, route or home. Each step's
time is printed (pytest -s). NOT RUN with the reason where no container runtime, minikube, kicbase
or component image can be had, or the container runtime has fewer than the stack's 2 CPUs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pulumi import automation as auto

from infra.automation import temp_stack
from infra.clusters.minikube import MinikubeClusterProvider, minikube_home, profile_containers, runtime_cores
from infra.config import MinikubeClusterConfig, parse_stack_config
from infra.names import unique_name
from infra.paths import REPO_ROOT
from infra.runtime import docker
from tests import live_stack
from tests.helpers import require_toolchain
from tests.live_fixtures import container_runtime, kicbase, minikube_leftovers  # noqa: F401 - fixtures
from tests.live_stack import FOUR_CAPABILITIES, FOUR_CAPABILITY_CHECKS, LOCAL_DEPLOYMENTS, LiveStack

pytestmark = [pytest.mark.live, pytest.mark.slow]
STACK_FILE = REPO_ROOT / "stacks" / "Pulumi.minikube-local.yaml"


def _quiet(_line: str) -> None:
    return None


def _timed(what: str, started: float) -> None:
    print(f"\nminikube-local: {what}: {time.monotonic() - started:.1f} s", flush=True)


def _props(stack: LiveStack) -> dict[str, object]:
    cluster = parse_stack_config(stack.ts.name, stack.raw, set()).cluster
    assert isinstance(cluster, MinikubeClusterConfig)
    return cluster.props()


@pytest.fixture(scope="module")
def minikube_stack(container_runtime: docker.RuntimeState, kicbase: str, manifests_tree: Path,  # noqa: F811
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    require_toolchain("minikube", "pulumi", "kubectl", "kustomize")
    name = unique_name("kfmkl")
    raw = live_stack.stack_raw(STACK_FILE, name)
    settings = raw["cluster"]["minikube"]
    cores = runtime_cores(settings["driver"]) or 0
    if cores < settings["cpus"]:
        pytest.skip(f"NOT RUN: the stack's minikube node takes {settings['cpus']} CPUs and this machine's container "
                    f"runtime has {cores}")
    live_stack.component_images_or_skip()
    settings["baseImage"] = kicbase  # built here (the stack file's), else upstream's pinned kicbase
    ts = temp_stack(tmp_path_factory.mktemp("minikubestack"), prefix="mkl",
                    env={"KFSTACK_MANIFESTS": str(manifests_tree)})
    stack = LiveStack(ts, name, raw)
    live_stack.add_suite_image(settings["preloadImages"])
    ts.set_config(stack.raw)
    yield stack
    with contextlib.suppress(auto.CommandError):
        ts.stack.destroy(on_output=_quiet)
    provider = MinikubeClusterProvider()
    if provider.cluster_exists(_props(stack)):  # a failed destroy must not strand the cluster
        provider.delete_cluster(_props(stack))
    ts.stack.workspace.remove_stack(ts.name, force=True)


def test_up_brings_every_pod_ready(minikube_stack: LiveStack) -> None:
    started = time.monotonic()
    result = minikube_stack.ts.stack.up(on_output=_quiet, parallel=64)
    _timed("pulumi up (the cluster from nothing, every image preloaded, Kubeflow applied)", started)
    assert result.summary.result == "succeeded"
    assert len(profile_containers(minikube_stack.name)) == 1
    api = minikube_stack.api()
    assert live_stack.ready_replicas(api, list(LOCAL_DEPLOYMENTS)) == LOCAL_DEPLOYMENTS
    live_stack.wait_every_pod_ready(api)


def test_a_forged_identity_header_to_the_api_server_is_dropped(minikube_stack: LiveStack) -> None:
    """minikube's bridge CNI enforces no NetworkPolicy: the agent the stack runs drops a profile
    namespace's direct call to ml-pipeline with a forged `kubeflow-userid`."""
    [node] = profile_containers(minikube_stack.name)
    live_stack.forged_header_to_the_api_server_is_dropped(minikube_stack.api(), node)


def test_the_smoke_suite_passes_through_port_forward(minikube_stack: LiveStack, tmp_path: Path) -> None:
    """Readiness, login through the real Dex and oauth2-proxy, inference (the sample pipelines'
    models on the real KFP, served by KServe in raw mode) and isolation, through a port-forward to
    the stand-in gateway."""
    started = time.monotonic()
    live_stack.suite_through_port_forward(minikube_stack, tmp_path, FOUR_CAPABILITY_CHECKS,
                                          select=("-m", FOUR_CAPABILITIES))
    _timed("smoke suite through port-forward (readiness, login, inference, isolation)", started)


def test_the_smoke_suite_runs_as_an_in_cluster_job(minikube_stack: LiveStack, tmp_path: Path) -> None:
    """The same four capabilities from inside the cluster: the project's Job against the gateway's
    Service by cluster DNS (the sample pipelines run again, and their models are served again)."""
    started = time.monotonic()
    live_stack.suite_as_job(minikube_stack, tmp_path, lambda: profile_containers(minikube_stack.name),
                            FOUR_CAPABILITY_CHECKS, select=("-m", FOUR_CAPABILITIES))
    _timed("smoke suite as the in-cluster Job (readiness, login, inference, isolation)", started)


def test_second_up_changes_nothing(minikube_stack: LiveStack) -> None:
    started = time.monotonic()
    changes = live_stack.up_changes(minikube_stack)
    _timed("no-op pulumi up", started)
    assert changes == {}


def test_destroy_leaves_no_profile_container_network_volume_route_or_home(minikube_stack: LiveStack) -> None:
    props = _props(minikube_stack)
    started = time.monotonic()
    minikube_stack.ts.stack.destroy(on_output=_quiet)
    _timed("pulumi destroy", started)
    assert not MinikubeClusterProvider().cluster_exists(props)
    assert not minikube_home(props).exists()
    assert minikube_leftovers(minikube_stack.name) == {"containers": [], "networks": [], "volumes": [], "routes": []}

