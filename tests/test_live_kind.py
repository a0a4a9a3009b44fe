"""T3 here: a real kind cluster from the node image built on this machine, created and deleted by
the project's own KindCluster provider through the real Pulumi engine.

In order, on one stack: create (node container, blackhole routes where the host needs them); the
API server runs with the configured service-account issuer, read back from the cluster; images go
into the node's containerd only when it lacks them under that name with that ID; a no-op
`pulumi up` changes nothing; a new node image replaces the cluster; destroy leaves no cluster,
container or route. Apart: a cluster of the same name made by plain kind (pytest-kind, the pinned
kind binary) is never deleted by a stack.

Where no container runtime can run, every test here is skipped with the reason (NOT RUN).
"""

from __future__ import annotations

import contextlib
import json
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
from infra.clusters.kind import (
    DEFAULT_POD_SUBNET,
    DEFAULT_SERVICE_SUBNET,
    KindCluster,
    delete_kind_cluster,
    node_containers,
)
from infra.clusters.preload import load_lacking, node_image_ids, normalize
from infra.config import KindClusterConfig, KindSettings
from infra.names import unique_name
from infra.runtime import routes
from smoke_tests.run import run
from smoke_tests.wait import wait_until
from tests.live_fixtures import container_runtime, node_image  # noqa: F401 - fixtures

pytestmark = [pytest.mark.live, pytest.mark.slow]
ISSUER = "https://kubernetes.default.svc.cluster.local"


def _quiet(_line: str) -> None:
    return None


def kind_clusters() -> list[str]:
    from infra.toolchain import tool_path

    return run([tool_path("kind"), "get", "clusters"], timeout=60).stdout.split()


@dataclass
class Live:
    ts: TempStack
    name: str
    image: dict[str, str]  # the program reads the current image from here

    def kube(self) -> client.ApiClient:
        kubeconfig = yaml.safe_load(self.ts.stack.outputs()["kubeconfig"].value)
        return kube_config.new_client_from_config_dict(kubeconfig)


@pytest.fixture(scope="module")
def live(node_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:  # noqa: F811
    base = tmp_path_factory.mktemp("live")
    name = unique_name("kflive")
    image = {"tag": node_image}

    def program() -> None:
        cluster = KindCluster("c", KindClusterConfig(name=name, kind=KindSettings(
            node_image=image["tag"], service_account_issuer=ISSUER)))
        pulumi.export("kubeconfig", cluster.kubeconfig)

    ts = inline_stack(base, program, prefix="live")
    yield Live(ts, name, image)
    with contextlib.suppress(auto.CommandError):
        ts.stack.destroy(on_output=_quiet)
    if name in kind_clusters():  # a failed destroy must not strand the cluster
        from infra.clusters.kind import KindClusterProvider

        KindClusterProvider().delete_cluster({"name": name})
    ts.stack.workspace.remove_stack(ts.name, force=True)


def test_up_creates_the_cluster_behind_blackhole_routes(live: Live) -> None:
    result = live.ts.stack.up(on_output=_quiet)
    assert result.summary.result == "succeeded"
    assert live.name in kind_clusters()
    assert len(node_containers(live.name)) == 1
    if routes.routes_wanted():
        assert routes.held_by(f"kind:{live.name}") == sorted([DEFAULT_POD_SUBNET, DEFAULT_SERVICE_SUBNET])
        assert routes.blackhole_present(DEFAULT_SERVICE_SUBNET)


def test_api_server_runs_with_the_configured_issuer(live: Live) -> None:
    api = live.kube()
    raw = api.call_api("/.well-known/openid-configuration", "GET", response_type="object",
                       _return_http_data_only=True)
    assert raw["issuer"] == ISSUER
    core = client.CoreV1Api(api)

    def node_ready() -> tuple[bool, Any]:
        conditions = {c.type: c.status for n in core.list_node().items for c in n.status.conditions or []}
        return conditions.get("Ready") == "True", conditions

    wait_until(node_ready, timeout=300, interval=3, what="the kind node to be Ready")


def _tiny_image(ref: str, label: str) -> str:
    """An image of one empty layer under `ref`, made here (no registry); its ID differs by `label`."""
    empty_tar = "\0" * 10240  # an archive of no files: its end-of-archive blocks
    run(["docker", "import", "--change", f"LABEL kfstack.preload-test={label}", "-", ref], input_text=empty_tar,
        timeout=60)
    return run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], timeout=60).stdout.strip()


def test_preload_loads_what_the_node_lacks_by_id_and_skips_what_it_has(live: Live) -> None:
    """On the real node's containerd: a new image is loaded; the same ID under that name is not
    loaded again; the name rebuilt with another ID is loaded again and the node then has that ID."""
    [node] = node_containers(live.name)
    ref = f"kfstack/{unique_name('preload-test')}:v1"
    try:
        first = _tiny_image(ref, "a")
        assert [load.loaded for load in load_lacking([node], [ref], _quiet)] == [[ref]]
        assert node_image_ids(node)[normalize(ref)] == first
        assert [load.loaded for load in load_lacking([node], [ref], _quiet)] == [[]]
        second = _tiny_image(ref, "b")
        assert second != first
        assert [load.loaded for load in load_lacking([node], [ref], _quiet)] == [[ref]]
        assert node_image_ids(node)[normalize(ref)] == second
    finally:
        run(["docker", "rmi", "--force", ref], timeout=60, check=False)
        run(["docker", "exec", node, "crictl", "rmi", normalize(ref)], timeout=60, check=False)


def test_second_up_changes_nothing(live: Live) -> None:
    preview = live.ts.stack.preview(on_output=_quiet)
    changes = {k: v for k, v in preview.change_summary.items() if k != "same"}
    assert changes == {}, preview.stdout


def test_new_node_image_replaces_the_cluster(live: Live) -> None:
    before = node_containers(live.name)
    alternate = f"{live.image['tag']}-replaced"
    run(["docker", "tag", live.image["tag"], alternate], timeout=60)
    live.image["tag"] = alternate  # what the program reads
    ops: dict[str, str] = {}

    def on_event(event: auto.EngineEvent) -> None:
        if event.resource_pre_event is not None:
            meta = event.resource_pre_event.metadata
            ops[meta.urn.rsplit("::", 1)[-1]] = str(meta.op)

    live.ts.stack.up(on_output=_quiet, on_event=on_event)
    # The cluster, and the Kubernetes provider built from its new kubeconfig.
    assert {name: op for name, op in ops.items() if "replace" in op.lower()}.keys() == {"c-kind", "c-k8s"}, ops
    after = node_containers(live.name)
    assert len(after) == 1 and after != before


def test_destroy_leaves_no_cluster_container_or_route(live: Live) -> None:
    added = routes.routes_wanted()
    live.ts.stack.destroy(on_output=_quiet)
    assert live.name not in kind_clusters()
    assert node_containers(live.name) == []
    assert routes.held_by(f"kind:{live.name}") == []
    for cidr in (DEFAULT_SERVICE_SUBNET, DEFAULT_POD_SUBNET):
        if added and not routes.holders(cidr):  # the last holder gone (another stack's cluster keeps it)
            assert not routes.blackhole_present(cidr), cidr
    with contextlib.suppress(Exception):
        run(["docker", "rmi", live.image["tag"]], timeout=60, check=False)


def test_a_cluster_made_by_plain_kind_is_never_deleted(node_image: str, tmp_path: Path,  # noqa: F811
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_kind import KindCluster as PlainKind

    from infra.toolchain import tool_path

    monkeypatch.chdir(tmp_path)  # pytest-kind keeps its files under the working directory
    name = unique_name("kfplain")
    owner = f"test:{name}"
    if routes.routes_wanted():  # plain kind on this host needs the same protection
        routes.hold(owner, [DEFAULT_SERVICE_SUBNET, DEFAULT_POD_SUBNET], say=_quiet)
    plain = PlainKind(name, kubeconfig=tmp_path / "kubeconfig", image=node_image, kind_path=tool_path("kind"))
    try:
        plain.create()
        before = node_containers(name)

        def program() -> None:
            KindCluster("c", KindClusterConfig(name=name, kind=KindSettings(node_image=node_image)))

        ts = inline_stack(tmp_path / "stack", program, prefix="plain")
        with pytest.raises(auto.CommandError) as err:
            ts.stack.up(on_output=_quiet)
        assert f"a kind cluster named '{name}' already exists" in str(err.value)
        assert name in kind_clusters()
        assert node_containers(name) == before  # the very same node, untouched
        ts.stack.destroy(on_output=_quiet)
        assert node_containers(name) == before
        ts.stack.workspace.remove_stack(ts.name, force=True)
    finally:
        if name in kind_clusters():  # as pytest-kind deletes it, with the provider's thaw-and-retry
            delete_kind_cluster(name, lambda: run([tool_path("kind"), "delete", "cluster", f"--name={name}",
                                                   f"--kubeconfig={plain.kubeconfig_path}"], timeout=300))
        routes.release(owner, say=_quiet)
        assert json.dumps(routes.held_by(owner)) == "[]"
