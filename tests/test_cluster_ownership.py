"""A stack never deletes a cluster it did not create (issue 11, defect 2).

T0: every local provider's create, with a cluster of the stack's name already running, refuses and
deletes nothing; adopts only on `adopt` or its own ownership record; a failed create removes only
what it made. T2: the same against a real KWOK cluster made outside Pulumi, through the real
engine. (T3, a real kind cluster made by plain `kind create cluster`, is in the live tier.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from infra.clusters.kind import KindClusterProvider
from infra.clusters.local import ClusterExistsError, LocalClusterProvider, OwnershipRecord
from infra.clusters.minikube import MinikubeClusterProvider
from infra.clusters.sim import SimClusterProvider
from infra.names import unique_name

PROVIDERS = [KindClusterProvider, MinikubeClusterProvider, SimClusterProvider]


class Recorder:
    """Stands in for the cluster binary: which clusters exist, and every operation asked of it."""

    def __init__(self, existing: set[str]) -> None:
        self.existing = set(existing)
        self.calls: list[tuple[str, str]] = []

    def install(self, provider: LocalClusterProvider, monkeypatch: pytest.MonkeyPatch,
                fail_create: bool = False) -> None:
        def create(props: dict[str, Any]) -> str:
            self.calls.append(("create", props["name"]))
            self.existing.add(props["name"])
            if fail_create:
                raise RuntimeError("kubeadm init failed")
            return "kubeconfig-of-" + props["name"]

        def delete(props: dict[str, Any]) -> None:
            self.calls.append(("delete", props["name"]))
            self.existing.discard(props["name"])

        def adopt(props: dict[str, Any]) -> str:
            self.calls.append(("adopt", props["name"]))
            return "adopted-kubeconfig"

        monkeypatch.setattr(provider, "create_cluster", create)
        monkeypatch.setattr(provider, "delete_cluster", delete)
        monkeypatch.setattr(provider, "adopt_cluster", adopt)
        monkeypatch.setattr(provider, "cluster_exists", lambda props: props["name"] in self.existing)


ProviderFactory = Callable[..., tuple[LocalClusterProvider, Recorder]]


@pytest.fixture(params=PROVIDERS, ids=lambda c: c.kind)
def provider_with(request: pytest.FixtureRequest, isolated_cache: Path,
                  monkeypatch: pytest.MonkeyPatch) -> ProviderFactory:
    """Each local provider, its binary replaced by a `Recorder` that knows the given clusters;
    ownership records in a cache of the test's own (these tests never touch real clusters)."""
    def make(existing: set[str], fail_create: bool = False) -> tuple[LocalClusterProvider, Recorder]:
        provider = request.param()
        binary = Recorder(existing)
        binary.install(provider, monkeypatch, fail_create=fail_create)
        return provider, binary
    return make


def test_a_running_cluster_of_the_same_name_is_refused_and_kept(provider_with: ProviderFactory) -> None:
    provider, binary = provider_with({"kubeflow"})
    with pytest.raises(ClusterExistsError) as err:
        provider.create({"name": "kubeflow", "owner": "kubeflow-stacks/dev"})
    assert "'kubeflow' already exists" in str(err.value)
    assert "cluster.adopt" in str(err.value) and "provider: existing" in str(err.value)
    assert binary.calls == []
    assert binary.existing == {"kubeflow"}


def test_a_cluster_recorded_for_another_stack_is_refused(provider_with: ProviderFactory) -> None:
    provider, binary = provider_with({"kubeflow"})
    OwnershipRecord(provider.workdir({"name": "kubeflow"})).write("kubeflow-stacks/other")
    with pytest.raises(ClusterExistsError, match="made by the stack kubeflow-stacks/other"):
        provider.create({"name": "kubeflow", "owner": "kubeflow-stacks/dev"})
    assert binary.calls == []


def test_adopts_its_own_interrupted_create_or_an_explicit_hand_over(provider_with: ProviderFactory) -> None:
    provider, binary = provider_with({"ours", "theirs"})
    OwnershipRecord(provider.workdir({"name": "ours"})).write("kubeflow-stacks/dev")
    made = provider.create({"name": "ours", "owner": "kubeflow-stacks/dev"})
    handed = provider.create({"name": "theirs", "owner": "kubeflow-stacks/dev", "adopt": True})
    assert made.outs and handed.outs
    assert made.outs["kubeconfig"] == handed.outs["kubeconfig"] == "adopted-kubeconfig"
    assert binary.calls == [("adopt", "ours"), ("adopt", "theirs")]
    assert OwnershipRecord(provider.workdir({"name": "theirs"})).owner() == "kubeflow-stacks/dev"


def test_a_failed_create_removes_only_what_it_made(provider_with: ProviderFactory) -> None:
    provider, binary = provider_with(set(), fail_create=True)
    with pytest.raises(RuntimeError, match="kubeadm init failed"):
        provider.create({"name": "new", "owner": "kubeflow-stacks/dev"})
    assert binary.calls == [("create", "new"), ("delete", "new")]
    assert OwnershipRecord(provider.workdir({"name": "new"})).owner() is None


def test_refresh_of_a_vanished_cluster_forgets_the_record(provider_with: ProviderFactory) -> None:
    provider, binary = provider_with(set())
    props = {"name": "gone", "owner": "kubeflow-stacks/dev"}
    created = provider.create(props)
    binary.existing.clear()  # deleted out of band
    assert provider.read(created.id, created.outs or {}).id is None
    binary.existing.add("gone")  # someone else's cluster, later, under the same name
    with pytest.raises(ClusterExistsError):
        provider.create(props)


# ---------------------------------------------------------------------------------------------
# T2: a real KWOK cluster made outside the stack, and the real engine


@pytest.mark.sim
@pytest.mark.slow
def test_up_over_a_foreign_sim_cluster_fails_and_leaves_it_running(tmp_path: Path) -> None:
    from infra.automation import inline_stack
    from infra.clusters.sim import SimCluster
    from infra.config import SimClusterConfig, SimSettings
    from tests.helpers import require_toolchain

    require_toolchain("kwokctl", "kwok", "kube-apiserver", "etcd", "pulumi")
    name = unique_name("kfown")
    props = {"name": name, "nodes": 1, "nodeCpu": "4", "nodeMemory": "8Gi", "nodePods": 110}
    foreign = SimClusterProvider()
    foreign.create_cluster(props)  # what a user's own `kwokctl create cluster` leaves
    try:
        def program(adopt: bool) -> Any:
            def run() -> None:
                SimCluster("c", SimClusterConfig(provider="sim", name=name, adopt=adopt, sim=SimSettings(
                    nodes=1, node_cpu="4", node_memory="8Gi", node_pods=110)))
            return run

        ts = inline_stack(tmp_path, program(False), prefix="own")
        shown: list[str] = []
        with pytest.raises(auto.CommandError):
            ts.stack.up(on_output=shown.append)
        text = "\n".join(shown)
        assert f"a sim cluster named '{name}' already exists" in text, text[-3000:]
        assert "cluster.adopt" in text
        assert foreign.cluster_exists(props), "the foreign cluster was deleted"

        # Handed over explicitly, the stack adopts it; destroy then deletes it, as documented.
        ts.stack.workspace.program = program(True)
        ts.stack.up(on_output=lambda _: None)
        assert foreign.cluster_exists(props)
        ts.stack.destroy(on_output=lambda _: None)
        assert not foreign.cluster_exists(props)
        ts.stack.workspace.remove_stack(ts.name)
    finally:
        if foreign.cluster_exists(props):
            foreign.delete_cluster(props)
