"""T0: the stacks that run upstream's components from images built here (kind-local on kind,
minikube-local on minikube) name what they run once: the component set `local` and the image set
`componentImages` ([component_images] in versions.toml), each a keyed config error when misspelt;
NetworkPolicy's agent is a setting of both providers; and a reordered image list changes nothing
in a running cluster (the set keeps versions.toml's order, not the order a stack file once had)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.clusters import kind, minikube
from infra.config import (
    ConfigError,
    KindClusterConfig,
    LocalClusterConfig,
    MinikubeClusterConfig,
    parse_stack_config,
)
from infra.patches import netpolicy
from infra.paths import REPO_ROOT
from infra.settings.kubeflow import LOCAL_EXCLUDE, LOCAL_INCLUDE
from infra.versions import load_versions
from tests.live_stack import stack_raw

KIND_LOCAL = REPO_ROOT / "stacks" / "Pulumi.kind-local.yaml"
MINIKUBE_LOCAL = REPO_ROOT / "stacks" / "Pulumi.minikube-local.yaml"
# kind-local's list as its stack file spelt it out before the set (its cluster's state holds this order).
KIND_LOCAL_LIST_BEFORE = (
    "ghcr.io/kubeflow/kubeflow/profile-controller:v1.10.0", "ghcr.io/kubeflow/kubeflow/kfam:v1.10.0",
    "quay.io/jetstack/cert-manager-controller:v1.16.1", "quay.io/jetstack/cert-manager-cainjector:v1.16.1",
    "quay.io/jetstack/cert-manager-webhook:v1.16.1", "ghcr.io/dexidp/dex:v2.44.0",
    "quay.io/oauth2-proxy/oauth2-proxy:v7.13.0", "docker.io/bitnamisecure/kubectl:latest",
    "kserve/kserve-controller:v0.15.2", "kserve/kserve-localmodel-controller:v0.15.2",
    "quay.io/brancz/kube-rbac-proxy:v0.18.0", "kserve/sklearnserver:v0.15.2", "kserve/storage-initializer:v0.15.2",
    "kfstack/standin-gateway:nginx-1.22", "ghcr.io/kubeflow/kfp-api-server:2.15.0",
    "ghcr.io/kubeflow/kfp-persistence-agent:2.15.0", "ghcr.io/kubeflow/kfp-driver:2.15.0",
    "ghcr.io/kubeflow/kfp-launcher:2.15.0", "quay.io/argoproj/workflow-controller:v3.7.3",
    "quay.io/argoproj/argoexec:v3.7.3", "chrislusf/seaweedfs:4.00", "ghcr.io/metacontroller/metacontroller:v4.11.22",
    "docker.io/alpine/k8s:1.32.3", "mysql:8.4", "gcr.io/tfx-oss-public/ml_metadata_store_server:1.14.0",
    "kfstack/kfp-runtime:py3.11-kfp2.15.0", "registry.k8s.io/networking/kube-network-policies:v0.8.0")


def _cluster(raw: dict[str, Any], stack: str = "t") -> LocalClusterConfig:
    cluster = parse_stack_config(stack, raw, set()).cluster
    assert isinstance(cluster, LocalClusterConfig)
    return cluster


def test_component_images_is_every_image_built_here_in_versions_order() -> None:
    cluster = _cluster({"devStack": True, "cluster": {"kind": {"preloadImages": ["componentImages"]}}})
    assert isinstance(cluster, KindClusterConfig)
    assert cluster.kind.preload_images == load_versions().component_images
    assert set(load_versions().component_images) == set(KIND_LOCAL_LIST_BEFORE)


def test_a_set_beside_images_keeps_each_image_once_in_order() -> None:
    extra = "kfstack/smoke-suite:abc"
    built = load_versions().component_images
    cluster = _cluster({"devStack": True, "cluster": {"provider": "minikube", "minikube": {
        "preloadImages": [built[3], "componentImages", extra, built[0]]}}})
    assert isinstance(cluster, MinikubeClusterConfig)
    assert cluster.minikube.preload_images == (built[3], *(b for b in built if b != built[3]), extra)


@pytest.mark.parametrize("provider", ["kind", "minikube"])
def test_a_misspelt_set_is_refused_naming_the_key_and_the_set(provider: str) -> None:
    with pytest.raises(ConfigError, match=rf"cluster\.{provider}\.preloadImages") as err:
        parse_stack_config("t", {"devStack": True, "cluster": {
            "provider": provider, provider: {"preloadImages": ["componentimages"]}}}, set())
    assert "componentImages" in str(err.value)


def test_both_local_stacks_name_the_same_sets_and_load_every_image_built_here() -> None:
    kind_raw, minikube_raw = stack_raw(KIND_LOCAL, "k"), stack_raw(MINIKUBE_LOCAL, "m")
    assert kind_raw["cluster"]["kind"]["preloadImages"] == ["componentImages"]
    assert minikube_raw["cluster"]["minikube"]["preloadImages"] == ["componentImages"]
    assert kind_raw["kubeflow"] == minikube_raw["kubeflow"]
    for key in ("devStack", "profiles", "gateway", "images", "storage"):
        assert kind_raw[key] == minikube_raw[key], key
    kind_cfg = parse_stack_config("kind-local", kind_raw, set())
    minikube_cfg = parse_stack_config("minikube-local", minikube_raw, set())
    assert isinstance(minikube_cfg.cluster, MinikubeClusterConfig)
    assert isinstance(kind_cfg.cluster, KindClusterConfig)
    assert minikube_cfg.cluster.minikube.preload_images == kind_cfg.cluster.kind.preload_images
    assert minikube_cfg.kubeflow == kind_cfg.kubeflow


def test_the_local_component_set_is_core_with_its_additions() -> None:
    cfg = parse_stack_config("t", {"devStack": True, "kubeflow": {"components": "local"}}, set())
    assert (cfg.kubeflow.components, cfg.kubeflow.include, cfg.kubeflow.exclude) == ("core", LOCAL_INCLUDE,
                                                                                      LOCAL_EXCLUDE)
    # What the stack adds itself is kept, and what it includes is no longer left out.
    cfg = parse_stack_config("t", {"devStack": True, "kubeflow": {
        "components": "local", "include": ["centraldashboard"], "exclude": ["kserve"]}}, set())
    assert "centraldashboard" in cfg.kubeflow.include and "centraldashboard" not in cfg.kubeflow.exclude
    assert cfg.kubeflow.exclude[-1] == "kserve"


def test_a_misspelt_component_set_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"kubeflow\.components") as err:
        parse_stack_config("t", {"devStack": True, "kubeflow": {"components": "locl"}}, set())
    assert "local" in str(err.value)


def test_minikube_local_runs_the_agent_and_its_cluster_inputs_leave_it_out() -> None:
    cfg = parse_stack_config("minikube-local", stack_raw(MINIKUBE_LOCAL, "m"), set())
    assert isinstance(cfg.cluster, MinikubeClusterConfig)
    assert netpolicy.wanted(cfg)
    assert "networkPolicy" not in cfg.cluster.props()  # the render's, not the cluster's lifecycle
    plain = copy.deepcopy(stack_raw(MINIKUBE_LOCAL, "m"))
    del plain["cluster"]["minikube"]["networkPolicy"]
    assert not netpolicy.wanted(parse_stack_config("minikube-local", plain, set()))
    sim = parse_stack_config("t", {"devStack": True, "cluster": {"provider": "sim"}}, set())
    assert not netpolicy.wanted(sim)


def test_minikube_local_fits_a_two_core_machine() -> None:
    """minikube refuses more CPUs than the container runtime has; this machine has 2 cores."""
    cfg = parse_stack_config("minikube-local", stack_raw(MINIKUBE_LOCAL, "m"), set())
    assert isinstance(cfg.cluster, MinikubeClusterConfig)
    assert minikube.cpu_problem(cfg.cluster.minikube, 2) is None
    assert cfg.cluster.minikube.base_image == "kfstack/kicbase:v1.37.0"


@pytest.mark.parametrize("provider", [kind.KindClusterProvider(), minikube.MinikubeClusterProvider()],
                         ids=["kind", "minikube"])
def test_a_reordered_image_list_is_no_change_and_a_new_image_is_one(provider: Any) -> None:
    """kind-local's running cluster holds the list in the order the file had; the set gives
    versions.toml's: the same images, so `pulumi up` changes nothing."""
    old = {"name": "c", "preloadImages": list(KIND_LOCAL_LIST_BEFORE)}
    new = {"name": "c", "preloadImages": list(load_versions().component_images)}
    assert new["preloadImages"] != old["preloadImages"]
    assert provider.diff("id", old, new).changes is False
    grown = {"name": "c", "preloadImages": [*new["preloadImages"], "kfstack/smoke-suite:abc"]}
    result = provider.diff("id", old, grown)
    assert result.changes is True and result.replaces == []
