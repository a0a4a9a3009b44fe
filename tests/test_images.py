"""The image map (infra/patches/images.py): T0 on the mapping itself, T1 on the real render."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.config import ConfigError, ImagesConfig, parse_stack_config
from infra.manifests.objects import Rendered
from infra.manifests.render import render
from infra.patches.images import containers, images_of, mapped_image, split_registry
from tests.helpers import base_raw

MIRROR = ImagesConfig(registry="registry.local:5000/kf",
                      overrides={"ghcr.io/dexidp/dex:v2.44.0": "kubeflow-stacks/dex:v2.44.0-local"})


@pytest.mark.parametrize(("image", "expected"), [
    ("busybox:1.37.0", ("docker.io", "library/busybox:1.37.0")),
    ("rancher/local-path-provisioner:v0.0.32", ("docker.io", "rancher/local-path-provisioner:v0.0.32")),
    ("ghcr.io/kubeflow/kfp-api-server:2.15.0", ("ghcr.io", "kubeflow/kfp-api-server:2.15.0")),
    ("localhost:5000/x@sha256:" + "a" * 64, ("localhost:5000", "x@sha256:" + "a" * 64)),
])
def test_registry_and_path_of_an_image(image: str, expected: tuple[str, str]) -> None:
    assert split_registry(image) == expected


def test_overrides_win_and_the_registry_keeps_the_path() -> None:
    assert mapped_image("ghcr.io/dexidp/dex:v2.44.0", MIRROR) == "kubeflow-stacks/dex:v2.44.0-local"
    assert mapped_image("quay.io/jetstack/cert-manager-webhook:v1.16.1", MIRROR) == \
        "registry.local:5000/kf/jetstack/cert-manager-webhook:v1.16.1"
    assert mapped_image("busybox:1.37.0", ImagesConfig()) == "busybox:1.37.0"


def test_containers_are_found_wherever_they_sit() -> None:
    cron = {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "initContainers": [{"name": "i", "image": "a:1"}], "containers": [{"name": "c", "image": "b:1"}]}}}}}}
    runtime = {"kind": "ClusterServingRuntime", "spec": {"containers": [{"name": "kserve-container",
                                                                          "image": "kserve/sklearnserver:v0.15.2"}]}}
    assert [c["image"] for c in containers(cron)] == ["a:1", "b:1"]
    assert images_of([cron, runtime]) == ["a:1", "b:1", "kserve/sklearnserver:v0.15.2"]


@pytest.mark.parametrize(("images", "expected"), [
    ({"registry": "https://registry.local"}, "images.registry = 'https://registry.local'"),
    ({"pullPolicy": "Sometimes"}, "images.pullPolicy = 'Sometimes': must be one of"),
    ({"overrides": {"ghcr.io/dexidp/dex:v2.44.0": "not an image"}}, "images.overrides.ghcr.io/dexidp/dex:v2.44.0"),
    ({"mirror": "x"}, "images.mirror = 'x': unknown setting"),
])
def test_bad_image_maps_are_refused_with_the_key(images: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_stack_config("t", base_raw(images=images), {"auth"})
    assert any(expected in str(p) for p in info.value.problems), info.value


@pytest.fixture(scope="module")
def mirrored(manifests_tree: Path) -> Rendered:
    raw = base_raw(images={"registry": "registry.local:5000/kf", "pullPolicy": "IfNotPresent",
                           "overrides": {"ghcr.io/dexidp/dex:v2.44.0": "kubeflow-stacks/dex:v2.44.0-local"}})
    return render(parse_stack_config("t", raw, {"auth"}), manifests_tree)


@pytest.mark.render
def test_every_container_of_the_render_runs_a_mapped_image(mirrored: Rendered) -> None:
    specs = [c for obj in mirrored.objects for c in containers(obj)]
    assert len(specs) > 50
    unmapped = sorted({c["image"] for c in specs if not c["image"].startswith("registry.local:5000/kf/")
                       and c["image"] != "kubeflow-stacks/dex:v2.44.0-local"})
    assert unmapped == []
    assert {c.get("imagePullPolicy") for c in specs} == {"IfNotPresent"}
    # Upstream v1.11.0 renders no init container; the T0 test above covers them.
    runtimes = [c["image"] for obj in mirrored.objects if obj["kind"] == "ClusterServingRuntime"
                for c in containers(obj)]
    assert runtimes and all(i.startswith("registry.local:5000/kf/") for i in runtimes)
    assert "kubeflow-stacks/dex:v2.44.0-local" in images_of(mirrored.objects)


def test_the_pull_policy_holds_for_images_the_map_does_not_move(manifests_tree: Path) -> None:
    """kind-local maps one image and loads the rest into the nodes: none may keep upstream's
    `Always` (KServe's managers) or the `:latest` default (the jwks proxy's kubectl)."""
    raw = base_raw(images={"overrides": {"docker.io/library/nginx:1.27.5": "kfstack/standin-gateway:nginx-1.22"},
                           "pullPolicy": "IfNotPresent"})
    rendered = render(parse_stack_config("t", raw, {"auth"}), manifests_tree)
    policies = {c["image"]: c.get("imagePullPolicy") for o in rendered.objects for c in containers(o)}
    assert policies["kserve/kserve-controller:v0.15.2"] == "IfNotPresent"
    assert {p for p in policies.values()} == {"IfNotPresent"}
