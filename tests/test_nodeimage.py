"""The node image's source route, without Docker: its pins, the step cache, kind's own files read
from the pinned module, the CNI config and the static-binary check. (The build itself runs in the
live tier, tests/test_live_kind.py.)"""

from __future__ import annotations

import ipaddress
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from infra.nodeimage import build, kindsrc, pins, steps
from infra.runtime import shim


def test_pins_share_the_toolchains_kubernetes_and_etcd() -> None:
    p = pins.load_pins()
    assert p.tools["kubernetes"].version == p.kubernetes
    assert p.tag == f"kfstack/node:{p.kubernetes}"
    assert p.etcd_image_tag == f"{p.tools['etcd'].number}-0"  # kubeadm's etcd image tag
    for name in ("kubeadm", "kubelet", "kube-proxy", "kube-apiserver"):
        assert name in p.tools["kubernetes"].binaries
    for name in ("kubernetes", "etcd", "containerd", "cni-plugins", "crictl", "coredns", "local-path-provisioner"):
        route = p.tools[name].module
        assert route is not None and route.static, f"{name} must build static for the node's minimal images"
    assert "busybox-static" in p.packages  # the local-path helper's shell


def test_cni_range_lies_in_the_kind_clusters_pod_subnet() -> None:
    from infra.clusters.kind import DEFAULT_POD_SUBNET

    cni_range = ipaddress.IPv4Network(pins.load_pins().pod_range)
    assert cni_range.subnet_of(ipaddress.IPv4Network(DEFAULT_POD_SUBNET))
    config: dict[str, Any] = build.cni_config(str(cni_range))
    assert config["plugins"][0]["ipam"]["ranges"] == [[{"subnet": str(cni_range)}]]


def test_a_cached_step_does_not_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KFSTACK_CACHE", str(tmp_path))
    built: list[str] = []
    out = tmp_path / "out"
    log = steps.StepLog(say=lambda _l: None)

    def make() -> None:
        built.append("x")
        out.write_text("x")

    assert log.run("demo", "k1", out.exists, make) == "built"
    assert log.run("demo", "k1", out.exists, make) == "cached"
    assert built == ["x"]
    assert log.summary().startswith("1 built, 1 cached")
    assert steps.digest({"a": 1, "b": [2]}) == steps.digest({"b": [2], "a": 1})
    assert steps.digest({"a": 1}) != steps.digest({"a": 2})  # a changed input is a new key


def test_static_check_tells_static_from_dynamic_binaries() -> None:
    if shutil.which("go") is None:
        pytest.skip("NOT RUN: building the runc shim needs Go")
    assert build.is_static(shim.build_shim(lambda _l: None))
    assert not build.is_static(Path(shutil.which("ls") or "/bin/ls"))


def test_go_string_constants_join_literals_and_other_constants() -> None:
    source = 'const a = "img:v1"\nconst m = `x: ` + a + `\ny: 1`\nconst q = "say \\"hi\\""\n'
    consts = kindsrc._go_string_consts(source)
    assert consts == {"a": "img:v1", "m": "x: img:v1\ny: 1", "q": 'say "hi"'}


def test_kinds_storage_manifest_and_images_come_from_the_pinned_module() -> None:
    if shutil.which("go") is None:
        pytest.skip("NOT RUN: reading kind's module needs Go")
    version = pins.load_pins().tools["kind"].version
    kind = kindsrc.kind_sources(version)
    assert (kind.base_files / "usr/local/bin/entrypoint").is_file()
    for image in kind.storage_images.values():
        assert f"image: {image}" in kind.storage_manifest or f"- {image}" in kind.storage_manifest
    assert "kind: StorageClass" in kind.storage_manifest


def test_kind_base_stage_on_a_root(tmp_path: Path) -> None:
    """kind's base-image stage applied to a small root: init, enabled units, kind's files."""
    if shutil.which("go") is None or shutil.which("systemctl") is None:
        pytest.skip("NOT RUN: needs Go (kind's module) and systemctl (unit links)")
    kind = kindsrc.kind_sources(pins.load_pins().tools["kind"].version)
    root = tmp_path / "root"
    for d in ("lib/systemd/system/multi-user.target.wants", "etc/systemd", "sbin", "usr/local/bin"):
        (root / d).mkdir(parents=True)
    (root / "lib/systemd/system/multi-user.target.wants/ssh.service").write_text("")
    (root / "etc/systemd/journald.conf").write_text("[Journal]\n")
    build.apply_kind_base(root, kind.base_files)
    assert (root / "sbin/init").readlink() == Path("/lib/systemd/systemd")
    assert not (root / "lib/systemd/system/multi-user.target.wants/ssh.service").exists()
    assert (root / "etc/systemd/system/multi-user.target.wants/kubelet.service").is_symlink()
    assert (root / "etc/systemd/system/systemd-binfmt.service").resolve() == Path("/dev/null")
    assert (root / "usr/local/bin/entrypoint").stat().st_mode & 0o111
    assert "ReadKMsg=no" in (root / "etc/systemd/journald.conf").read_text()


def test_show_names_the_release_pin_and_what_was_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from infra.cli import main
    from infra.versions import load_versions

    monkeypatch.setenv("KFSTACK_CACHE", str(tmp_path))
    assert main(["nodeimage", "show"]) == 0
    out = capsys.readouterr().out
    assert f"release route: {load_versions().kind_node_image}" in out
    assert "not built yet (kfstack nodeimage build)" in out
    (steps.nodeimage_dir() / "node-image.json").write_text(
        '{"tag": "kfstack/node:v1.34.2", "key": "abc", "built_at": "2026-12-01T19:00:00+0000"}')
    assert main(["nodeimage", "show"]) == 0
    assert "source route: kfstack/node:v1.34.2 (inputs abc" in capsys.readouterr().out


def test_kind_local_stack_preloads_exactly_the_component_images_built_here() -> None:
    from infra.config import KindClusterConfig, parse_stack_config
    from infra.nodeimage.components import component_images
    from tests.test_live_kind_stack import stack_raw

    cluster = parse_stack_config("kind-local", stack_raw("kflocal"), set()).cluster
    assert isinstance(cluster, KindClusterConfig)
    assert set(cluster.kind.preload_images) == set(component_images())
    assert cluster.kind.node_image == pins.load_pins().tag


def test_preload_images_must_be_tagged_references() -> None:
    from infra.config import ConfigError, parse_stack_config
    from tests.test_live_kind_stack import stack_raw

    raw = stack_raw("kflocal")
    raw["cluster"]["kind"]["preloadImages"] = ["ghcr.io/kubeflow/kubeflow/kfam"]
    with pytest.raises(ConfigError, match=r"cluster\.kind\.preloadImages"):
        parse_stack_config("kind-local", raw, set())


@pytest.mark.render
def test_kind_local_preloads_every_image_it_runs(manifests_tree: Path) -> None:
    """T1: the stack runs no pod from an image it does not load into its nodes (kubelet would try to
    pull): every workload's image, and for KServe's raw InferenceServices the sklearn runtime and the
    storage initializer named in inferenceservice-config. Other serving runtimes stay objects only."""
    from infra.apply import WORKLOAD_KINDS
    from infra.config import KindClusterConfig, parse_stack_config
    from infra.manifests.render import render
    from infra.patches.images import images_of
    from tests.test_live_kind_stack import stack_raw

    cfg = parse_stack_config("kind-local", stack_raw("kflocal"), set())
    assert isinstance(cfg.cluster, KindClusterConfig)
    rendered = render(cfg, manifests_tree)
    workloads = images_of([o for o in rendered.objects if o["kind"] in WORKLOAD_KINDS])
    [sklearn] = rendered.find("ClusterServingRuntime", "kserve-sklearnserver")
    [isvc_config] = rendered.find("ConfigMap", "inferenceservice-config")
    initializer = json.loads(isvc_config["data"]["storageInitializer"])["image"]
    preloaded = set(cfg.cluster.kind.preload_images)
    assert set(workloads) | set(images_of([sklearn])) | {initializer} <= preloaded
    # Pipeline runs' pods: the driver and launcher the API server names, Argo's executor, the step image.
    [api] = [c for o in rendered.find("Deployment", "ml-pipeline", "kubeflow")
             for c in o["spec"]["template"]["spec"]["containers"]]
    api_env = {e["name"]: e.get("value") for e in api.get("env", [])}
    [controller] = [c for o in rendered.find("Deployment", "workflow-controller", "kubeflow")
                    for c in o["spec"]["template"]["spec"]["containers"]]
    executor = controller["args"][controller["args"].index("--executor-image") + 1]
    from infra.outputs import stack_outputs

    runs = {api_env["V2_DRIVER_IMAGE"], api_env["V2_LAUNCHER_IMAGE"], executor,
            stack_outputs(cfg, rendered)["pipelineImage"]}
    assert runs <= preloaded
    assert preloaded - set(images_of(rendered.objects)) - {initializer} - runs == set()  # nothing loaded in vain
    assert "kfstack/standin-gateway:nginx-1.22" in workloads


def test_a_recipe_image_without_its_source_copy_fails_naming_it(tmp_path: Path) -> None:
    """KServe's Python servers are not on PyPI: without the source copy the build stops at once,
    before any image is made, and says what to provide."""
    from infra.nodeimage.build import NodeImageError
    from infra.nodeimage.components import build_component_images

    with pytest.raises(NodeImageError, match=r"source tree .*kserve-v0\.15\.2-python not found"):
        build_component_images(["kserve/sklearnserver:v0.15.2"], say=lambda line: None, sources=tmp_path)
