"""T0: a local cluster's settings are written once: the stack config's cluster section is the
component's input, and its `props()` are the dynamic resource's inputs under the names existing
stacks hold in their state (a renamed or added key would show as a change on the next `pulumi up`)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.clusters.base import cluster_settings
from infra.config import KindClusterConfig, SimClusterConfig, parse_stack_config
from infra.settings.cluster import LocalClusterConfig
from infra.versions import load_versions


def _cluster(section: dict[str, Any]) -> LocalClusterConfig:
    cluster = parse_stack_config("t", {"devStack": True, "cluster": section}).cluster
    assert isinstance(cluster, LocalClusterConfig)
    return cluster


def test_kind_props_on_every_default() -> None:
    assert _cluster({}).props() == {
        "name": "kubeflow", "nodeImage": load_versions().kind_node_image, "controlPlanes": 1, "workers": 0,
        "serviceAccountIssuer": "https://kubernetes.default.svc",
        "serviceAccountSigningKeyFile": "/etc/kubernetes/pki/sa.key", "extraPortMappings": [],
        "preloadImages": [], "podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/16"}


def test_kind_port_mappings_keep_their_keys() -> None:
    cluster = _cluster({"kind": {"extraPortMappings": [{"containerPort": "80", "hostPort": 8080}]}})
    assert cluster.props()["extraPortMappings"] == [
        {"containerPort": 80, "hostPort": 8080, "listenAddress": "127.0.0.1"}]


def test_minikube_props_on_every_default() -> None:
    assert _cluster({"provider": "minikube", "name": "m"}).props() == {
        "name": "m", "driver": "docker", "cpus": 2, "memory": "16g", "disk": "50g", "kubernetesVersion": "v1.34.2",
        "baseImage": load_versions().minikube_base_image, "containerRuntime": "containerd", "cni": "bridge",
        "preloadImages": []}


def test_sim_props_as_set() -> None:
    cluster = _cluster({"provider": "sim", "name": "s", "adopt": "true", "sim": {"nodes": 2, "nodeMemory": "8Gi"}})
    assert cluster.props() == {
        "name": "s", "nodes": 2, "nodeCpu": "16", "nodeMemory": "8Gi", "nodePods": 250}
    assert cluster.adopt is True


def test_a_component_refuses_another_providers_section() -> None:
    cfg = parse_stack_config("t", {"devStack": True, "cluster": {"provider": "sim"}})
    assert isinstance(cluster_settings(cfg, SimClusterConfig), SimClusterConfig)
    with pytest.raises(TypeError, match="KindClusterConfig given a sim cluster"):
        cluster_settings(cfg, KindClusterConfig)


def test_image_lists_built_in_code_are_taken_as_tuples_too() -> None:
    """The settings hold tuples; a caller building them in code (the live tests) may pass one."""
    from infra.config import MinikubeSettings

    assert MinikubeSettings(preload_images=("kfstack/x:v1",)).preload_images == ("kfstack/x:v1",)
