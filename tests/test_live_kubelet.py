"""T3 here: a real kind node whose kubelet cannot start makes the create fail in seconds, naming why.

The kubelet is broken on purpose, the same way on every host: a KubeletConfiguration that asks to
enforce `system-reserved` without naming its cgroup, which kubelet's own validation refuses at
start, so systemd restarts it every second (what a missing cgroup hierarchy did on a fresh host).
The create runs through the provider's own `create_watching_kubelet`, and the half-made cluster is
deleted afterwards, as the provider's create does after any failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.clusters import kind, kubelet
from infra.names import unique_name
from infra.runtime import routes
from tests.live_fixtures import container_runtime, node_image  # noqa: F401 - fixtures

pytestmark = [pytest.mark.live, pytest.mark.slow]
BROKEN_KUBELET = {"kind": "KubeletConfiguration", "enforceNodeAllocatable": ["pods", "system-reserved"]}


def test_a_kubelet_that_keeps_exiting_fails_the_create_with_its_reason(node_image: str,  # noqa: F811
                                                                        tmp_path: Path) -> None:
    name = unique_name("kfkubelet")
    config = tmp_path / "kind.yaml"
    config.write_text(yaml.safe_dump({
        "kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4",
        "networking": {"podSubnet": kind.DEFAULT_POD_SUBNET, "serviceSubnet": kind.DEFAULT_SERVICE_SUBNET},
        "nodes": [{"role": "control-plane", "image": node_image,
                   "kubeadmConfigPatches": [yaml.safe_dump(BROKEN_KUBELET)]}]}))
    owner = f"test:{name}"
    if routes.routes_wanted():
        routes.hold(owner, [kind.DEFAULT_SERVICE_SUBNET, kind.DEFAULT_POD_SUBNET], say=print)
    try:
        with pytest.raises(kubelet.KubeletFailedError) as err:
            kind.create_watching_kubelet(name, "create", "cluster", "--name", name, "--config", str(config),
                                         "--kubeconfig", str(tmp_path / "kubeconfig"), "--wait", "5m")
        message = str(err.value)
        assert message.startswith(f"kubelet on node {name}-control-plane exited "), message
        assert "system-reserved" in message and "\n" not in message, message  # kubelet's own reason, one line
        journal = Path(message.rsplit("(its journal: ", 1)[1].split(";", 1)[0])
        assert "system-reserved" in journal.read_text()
    finally:
        if kind.KindClusterProvider().cluster_exists({"name": name}):
            kind.KindClusterProvider().delete_cluster({"name": name})
        routes.release(owner, say=print)
    assert name not in kind.kind_cli("get", "clusters").split()
