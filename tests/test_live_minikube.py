"""T3 here: a real minikube cluster from the kicbase image and preload built on this machine,
created and deleted by the project's own MinikubeCluster provider through the real Pulumi engine.

One cluster serves the tests that are not about its lifecycle (module-scoped, as the CI budget
needs): create to a Ready node behind blackhole routes where the host needs them, a local image of
`preloadImages` in the node under its ID, the skipped checks named in the stack's output, a
kubeconfig that works from another directory, a claim bound by the storage-provisioner built here,
a no-op `pulumi up` with zero changes, and destroy leaving no profile, container, network, volume
or route. Apart, and after it: a profile of the same name made
by plain `minikube start` in another home is refused and kept.

Where the host cannot run them (no container runtime, no minikube, fewer than 2 cores), NOT RUN
with the reason.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config
from pulumi import automation as auto

from infra.automation import TempStack, inline_stack
from infra.clusters.minikube import (
    POD_RANGE,
    SERVICE_RANGE,
    MinikubeCluster,
    MinikubeClusterProvider,
    minikube_home,
    newest_kubernetes,
    profile_containers,
    runtime_cores,
    skipped_checks,
)
from infra.clusters.preload import node_image_ids, normalize
from infra.config import MinikubeClusterConfig, MinikubeSettings
from infra.names import unique_name
from infra.runtime import routes
from smoke_tests.run import run
from smoke_tests.wait import wait_until
from tests.live_fixtures import container_runtime, kicbase, minikube_leftovers  # noqa: F401 - fixtures

pytestmark = [pytest.mark.live, pytest.mark.slow]
MEMORY = "3g"  # small: the machine is shared with kind clusters


def _quiet(_line: str) -> None:
    return None


def _settings(image: str, preload: tuple[str, ...] = ()) -> MinikubeSettings:
    cores = runtime_cores("docker") or 0
    if cores < 2:
        pytest.skip(f"NOT RUN: minikube needs 2 CPUs and this machine's container runtime has {cores}")
    return MinikubeSettings(cpus=2, memory=MEMORY, disk="20g", base_image=image, preload_images=preload)


def _tiny_image(ref: str) -> str:
    """An image of one empty layer under `ref`, made here (no registry); returns its ID."""
    run(["docker", "import", "--change", f"LABEL kfstack.preload-test={ref}", "-", ref], input_text="\0" * 10240,
        timeout=60)
    return run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], timeout=60).stdout.strip()


@dataclass
class Live:
    ts: TempStack
    name: str
    props: dict[str, Any]
    preloaded: dict[str, str]  # a local image in preloadImages -> its ID

    def kubeconfig(self) -> str:
        return str(self.ts.stack.outputs()["kubeconfig"].value)

    def kube(self) -> client.ApiClient:
        return kube_config.new_client_from_config_dict(yaml.safe_load(self.kubeconfig()))


@pytest.fixture(scope="module")
def live(kicbase: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:  # noqa: F811
    name = unique_name("kfmk")
    ref = f"kfstack/{unique_name('mk-preload-test')}:v1"
    config = MinikubeClusterConfig(provider="minikube", name=name, minikube=_settings(kicbase, (ref,)))
    preloaded = {ref: _tiny_image(ref)}

    def program() -> None:
        cluster = MinikubeCluster("c", config)
        pulumi.export("kubeconfig", cluster.kubeconfig)
        pulumi.export("skippedChecks", cluster.outputs["skippedChecks"])

    ts = inline_stack(tmp_path_factory.mktemp("live-minikube"), program, prefix="mk")
    yield Live(ts, name, config.props(), preloaded)
    run(["docker", "rmi", "--force", ref], timeout=60, check=False)
    with contextlib.suppress(auto.CommandError):
        ts.stack.destroy(on_output=_quiet)
    provider = MinikubeClusterProvider()
    if provider.cluster_exists(config.props()):  # a failed destroy must not strand the cluster
        provider.delete_cluster(config.props())
    ts.stack.workspace.remove_stack(ts.name, force=True)


def test_up_creates_a_ready_node(live: Live) -> None:
    result = live.ts.stack.up(on_output=_quiet)
    assert result.summary.result == "succeeded"
    assert len(profile_containers(live.name)) == 1
    if routes.routes_wanted():
        assert routes.held_by(f"minikube:{live.name}") == sorted([POD_RANGE, SERVICE_RANGE])
        assert routes.blackhole_present(SERVICE_RANGE)
    core = client.CoreV1Api(live.kube())

    def node_ready() -> tuple[bool, Any]:
        conditions = {c.type: c.status for n in core.list_node().items for c in n.status.conditions or []}
        return conditions.get("Ready") == "True", conditions

    wait_until(node_ready, timeout=300, interval=3, what="the minikube node to be Ready")


def test_preload_images_reach_the_node_by_id(live: Live) -> None:
    [node] = profile_containers(live.name)
    ids = node_image_ids(node)
    assert {ref: ids.get(normalize(ref)) for ref in live.preloaded} == live.preloaded


def test_the_output_names_the_checks_force_skipped(live: Live) -> None:
    expected = skipped_checks(live.props, euid=os.geteuid(), newest=newest_kubernetes())
    assert live.ts.stack.outputs()["skippedChecks"].value == expected
    # minikube kept the profile in the stack's own home, not the user's ~/.minikube
    assert (minikube_home(live.props) / ".minikube" / "profiles" / live.name / "config.json").exists()


def test_the_kubeconfig_works_from_another_directory(live: Live, tmp_path: Path) -> None:
    """Self-contained: certificates embedded, so no path under the stack's minikube home is needed."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(live.kubeconfig())
    [user] = yaml.safe_load(live.kubeconfig())["users"]
    assert {"client-certificate-data", "client-key-data"} <= set(user["user"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    from infra.toolchain import tool_path

    out = run([tool_path("kubectl"), "--kubeconfig", str(kubeconfig), "get", "nodes", "-o", "name"], timeout=60,
              cwd=elsewhere, env={"MINIKUBE_HOME": str(elsewhere), "HOME": str(elsewhere)}).stdout
    assert out.split() == [f"node/{live.name}"]


def test_the_storage_provisioner_built_here_binds_a_claim(live: Live) -> None:
    core = client.CoreV1Api(live.kube())
    claim = unique_name("claim")
    core.create_namespaced_persistent_volume_claim("default", {
        "metadata": {"name": claim}, "spec": {"accessModes": ["ReadWriteOnce"],
                                              "resources": {"requests": {"storage": "10Mi"}}}})
    try:
        def bound() -> tuple[bool, Any]:
            phase = core.read_namespaced_persistent_volume_claim(claim, "default").status.phase
            return phase == "Bound", phase

        wait_until(bound, timeout=180, interval=2, what=f"claim {claim} bound by minikube's storage-provisioner")
    finally:
        core.delete_namespaced_persistent_volume_claim(claim, "default")


def test_second_up_changes_nothing(live: Live) -> None:
    result = live.ts.stack.up(on_output=_quiet)
    changes = {k: v for k, v in (result.summary.resource_changes or {}).items() if k != "same"}
    assert changes == {}, result.stdout


def test_destroy_leaves_no_profile_container_network_volume_or_route(live: Live) -> None:
    added = routes.routes_wanted()
    live.ts.stack.destroy(on_output=_quiet)
    assert not MinikubeClusterProvider().cluster_exists(live.props)
    assert not minikube_home(live.props).exists()  # its CA and keys went with it
    assert minikube_leftovers(live.name) == {"containers": [], "networks": [], "volumes": [], "routes": []}
    for cidr in (SERVICE_RANGE, POD_RANGE):
        if added and not routes.holders(cidr):  # the last holder gone (another cluster may keep it)
            assert not routes.blackhole_present(cidr), cidr


def test_a_profile_made_by_plain_minikube_is_refused_and_kept(kicbase: str, tmp_path: Path) -> None:  # noqa: F811
    """`minikube start` by hand in the user's own home (no Kubernetes: the node container is what
    makes the name taken); the stack's `up` fails naming it, and neither up nor destroy touch it."""
    from infra.toolchain import tool_path, tools_env

    name = unique_name("kfmkplain")
    home = tmp_path / "user-home"
    env = {**tools_env(), "MINIKUBE_HOME": str(home), "KUBECONFIG": str(home / "kubeconfig"),
           "MINIKUBE_WANTUPDATENOTIFICATION": "false", "MINIKUBE_IN_STYLE": "false"}
    minikube = str(tool_path("minikube"))
    settings = _settings(kicbase)
    force = ["--force"] if os.geteuid() == 0 else []
    try:
        run([minikube, "start", "-p", name, "--driver=docker", "--no-kubernetes", f"--base-image={kicbase}",
             "--container-runtime=containerd", "--cpus=2", f"--memory={MEMORY}", *force], timeout=600, env=env)
        before = profile_containers(name)
        assert len(before) == 1

        def program() -> None:
            MinikubeCluster("c", MinikubeClusterConfig(provider="minikube", name=name, minikube=settings))

        ts = inline_stack(tmp_path / "stack", program, prefix="mkplain")
        with pytest.raises(auto.CommandError) as err:
            ts.stack.up(on_output=_quiet)
        assert f"a minikube cluster named '{name}' already exists" in str(err.value)
        assert profile_containers(name) == before  # the very same node, untouched
        ts.stack.destroy(on_output=_quiet)
        assert profile_containers(name) == before
        status = run([minikube, "status", "-p", name, "--format", "{{.Host}}"], timeout=60, env=env, check=False)
        assert status.stdout.splitlines()[:1] == ["Running"], status.stdout  # then a warning of no kubeconfig
        ts.stack.workspace.remove_stack(ts.name, force=True)
    finally:
        run([minikube, "delete", "-p", name], timeout=300, env=env, check=False)
    assert profile_containers(name) == []
