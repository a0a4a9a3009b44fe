"""Which preloaded images a kind create loads before the apply, and which beside it (T1 render and
T0): a workload of the render never waits for an image left to later, and what is left to later is
exactly what only runs, InferenceServices and the in-cluster suite start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.clusters.late_images import late_images, workload_images
from infra.clusters.preload import normalize
from infra.manifests.render import render
from infra.settings.cluster import KindClusterConfig
from tests.helpers import REPO, stack_file_config
from tests.test_program_mocks import mocks  # noqa: F401 - a fixture

KIND_LOCAL = REPO / "stacks" / "Pulumi.kind-local.yaml"


def _deployment(image: str, init: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": image}]}
    if init:
        spec["initContainers"] = [{"name": "i", "image": init}]
    return {"kind": "Deployment", "spec": {"template": {"spec": spec}}}


def test_only_images_no_pod_template_names_are_late() -> None:
    objects = [_deployment("kserve/kserve-controller:v1", init="busybox"),
               {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
                   "containers": [{"name": "c", "image": "ghcr.io/x/cron:1"}]}}}}}},
               # A serving runtime names its container, but no pod runs it until an InferenceService does.
               {"kind": "ClusterServingRuntime",
                "spec": {"containers": [{"name": "s", "image": "kserve/sklearnserver:v1"}]}}]
    preload = ["docker.io/kserve/kserve-controller:v1", "busybox:latest", "ghcr.io/x/cron:1",
               "kserve/sklearnserver:v1", "kfstack/kfp-runtime:py3", "kserve/sklearnserver:v1"]
    assert late_images(preload, objects) == ["kserve/sklearnserver:v1", "kfstack/kfp-runtime:py3"]


def test_kind_locals_workloads_find_every_image_they_run_preloaded_before_the_apply(manifests_tree: Path) -> None:
    cfg = stack_file_config(KIND_LOCAL)
    assert isinstance(cfg.cluster, KindClusterConfig)
    rendered = render(cfg, manifests_tree)
    preload = list(cfg.cluster.props()["preloadImages"])
    late = late_images(preload, rendered.objects)
    early = {normalize(i) for i in preload if i not in late}
    assert workload_images(rendered.objects) <= early, workload_images(rendered.objects) - early
    assert sorted(late) == sorted([
        "kserve/sklearnserver:v0.15.2", "kserve/storage-initializer:v0.15.2",  # InferenceServices
        "ghcr.io/kubeflow/kfp-driver:2.15.0", "ghcr.io/kubeflow/kfp-launcher:2.15.0",  # pipeline runs
        "quay.io/argoproj/argoexec:v3.7.3", "kfstack/kfp-runtime:py3.11-kfp2.15.0"])


def test_a_kind_stack_loads_the_late_images_beside_the_apply(mocks: Any,  # noqa: F811 - the fixture
        manifests_tree: Path) -> None:
    """Under Pulumi's mocks: the cluster's create leaves the late images out, and a resource of their
    own loads them, outside the cluster's component (the apply waits on all of that component)."""
    from tests.test_program_mocks import _build, _resolve, in_pulumi

    sklearn, cert_manager = "kserve/sklearnserver:v0.15.2", "quay.io/jetstack/cert-manager-controller:v1.16.1"
    kind = {"provider": "kind", "name": "k", "kind": {"preloadImages": [sklearn, cert_manager]}}
    stack = in_pulumi(lambda: _build(kind, manifests_tree))
    [cluster] = mocks.clusters()[:1]
    assert (cluster.inputs["preloadImages"], cluster.inputs["lateImages"]) == ([sklearn, cert_manager], [sklearn])
    [late] = [r for r in mocks.registered if r.inputs.get("nodeLabel")]
    assert (late.inputs["nodeLabel"], late.inputs["images"]) == ("io.x-k8s.kind.cluster=k", [sklearn])
    urn = in_pulumi(lambda: _resolve(stack.cluster.late_images.urn))
    assert "KindCluster" not in urn.split("::")[2], urn


def test_without_late_images_a_kind_stack_registers_no_loader(mocks: Any,  # noqa: F811 - the fixture
        manifests_tree: Path) -> None:
    from tests.test_program_mocks import _build, in_pulumi

    in_pulumi(lambda: _build({"provider": "kind", "name": "k", "kind": {"preloadImages": [
        "quay.io/jetstack/cert-manager-controller:v1.16.1"]}}, manifests_tree))
    assert [r for r in mocks.registered if r.inputs.get("nodeLabel")] == []
    assert "lateImages" not in mocks.clusters()[0].inputs
