"""T0: the minikube provider's decisions, without minikube: its start flags, when `--force` is
passed and what it skips, the CPU check against the host's cores (a keyed config error before
anything is created), the preload's file name, and the [minikube] pins held against minikube's own
source (the Go module, when it is in the module cache)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from infra.clusters import minikube
from infra.clusters.local import CREATE_ONLY_KEYS
from infra.clusters.minikube import (
    MinikubeCluster,
    MinikubeClusterProvider,
    cpu_problem,
    minikube_start_args,
    skipped_checks,
)
from infra.config import MinikubeClusterConfig, parse_stack_config
from infra.nodeimage.kicbase import load_kicbase_pins, preload_name
from infra.settings.fields import ConfigError
from infra.versions import load_versions


def _config(**minikube_section: Any) -> MinikubeClusterConfig:
    cfg = parse_stack_config("t", {"devStack": True, "cluster": {
        "provider": "minikube", "name": "m", "minikube": minikube_section}})
    assert isinstance(cfg.cluster, MinikubeClusterConfig)
    return cfg.cluster


def _flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_start_flags_carry_the_stack_settings_and_a_self_contained_kubeconfig() -> None:
    props = _config(baseImage="kfstack/kicbase:v1.37.0", cpus=2, memory="3g").props()
    args = minikube_start_args(props)
    assert args[:3] == ["start", "--profile", "m"]
    assert _flag(args, "--base-image") == "kfstack/kicbase:v1.37.0"
    assert _flag(args, "--container-runtime") == "containerd"
    assert _flag(args, "--cni") == "bridge"
    assert (_flag(args, "--cpus"), _flag(args, "--memory")) == ("2", "3g")
    assert "--embed-certs" in args
    assert "--force" not in args and "--cache-images=false" not in args
    forced = minikube_start_args(props, force=True, local_preload=True)
    assert "--force" in forced and "--cache-images=false" in forced


def test_the_release_kicbase_is_the_default_base_image() -> None:
    image = _config().props()["baseImage"]
    assert image == load_versions().minikube_base_image
    assert re.fullmatch(r"gcr\.io/k8s-minikube/kicbase:v[0-9.]+@sha256:[0-9a-f]{64}", image)


def test_cni_auto_leaves_the_choice_to_minikube() -> None:
    assert "--cni" not in minikube_start_args(_config(cni="auto").props())


@pytest.mark.parametrize(("driver", "euid", "version", "expected"), [
    ("docker", 0, "v1.34.2", ["DRV_AS_ROOT", "K8S_VERSION"]),
    ("docker", 1000, "v1.34.0", []),
    ("docker", 1000, "v1.34.2", ["K8S_VERSION"]),
    ("kvm2", 0, "v1.33.1", []),
    ("podman", 0, "v1.9.10", ["DRV_AS_ROOT"]),
])
def test_force_only_where_a_check_would_stop_minikube(driver: str, euid: int, version: str,
                                                      expected: list[str]) -> None:
    props = _config(driver=driver, kubernetesVersion=version).props()
    skipped = skipped_checks(props, euid=euid, newest="v1.34.0")
    assert [s.split(":")[0] for s in skipped] == expected


def test_skipped_checks_are_an_output_that_never_shows_as_a_change() -> None:
    provider = MinikubeClusterProvider()
    props = _config().props()
    outputs = provider.extra_outputs(props)
    assert set(outputs) == {"skippedChecks"} <= CREATE_ONLY_KEYS
    diff = provider.diff("minikube:m", {**props, **outputs, "kubeconfig": "k"}, {**props, "skippedChecks": None})
    assert not diff.changes


@pytest.mark.parametrize("key", ["baseImage", "containerRuntime", "cni", "cpus"])
def test_a_changed_node_setting_replaces_the_cluster(key: str) -> None:
    old = _config().props()
    new = {**old, key: {"baseImage": "kfstack/kicbase:v1.37.0", "containerRuntime": "docker", "cni": "kindnet",
                        "cpus": 4}[key]}
    assert MinikubeClusterProvider().diff("minikube:m", old, new).replaces == [key]


def test_a_changed_image_list_is_loaded_in_place() -> None:
    old = _config().props()
    diff = MinikubeClusterProvider().diff("minikube:m", old, {**old, "preloadImages": ["kfstack/x:v1"]})
    assert diff.changes and diff.replaces == []


def test_more_cpus_than_the_runtime_has_is_a_keyed_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse_stack_config("t", {"devStack": True, "cluster": {
        "provider": "minikube", "name": "m", "minikube": {"cpus": 8}}})
    monkeypatch.setattr(minikube, "runtime_cores", lambda driver: 2)
    with pytest.raises(ConfigError) as err:
        MinikubeCluster.from_config(cfg)  # raises before any resource is registered
    [problem] = err.value.problems
    assert problem.key == "cluster.minikube.cpus" and problem.value == 8
    assert "kubeflow-stacks:cluster.minikube.cpus = 8" in str(err.value)
    assert "pulumi config set --path cluster.minikube.cpus 2" in str(err.value)


def test_the_cpu_check_passes_within_the_cores_and_ignores_vm_drivers() -> None:
    assert cpu_problem(_config(cpus=2).minikube, 2) is None
    assert cpu_problem(_config(cpus=8, driver="kvm2").minikube, 2) is None
    assert cpu_problem(_config(cpus=3).minikube, 2) is not None
    assert cpu_problem(_config(cpus=3).minikube, None) is None  # no runtime to ask: minikube says


def test_preload_name_is_minikubes() -> None:
    assert preload_name("v18", "v1.34.2") == "preloaded-images-k8s-v18-v1.34.2-containerd-overlay2-amd64.tar.lz4"
    assert preload_name("v18", "v1.34.2", "cri-o") == "preloaded-images-k8s-v18-v1.34.2-cri-o-overlay-amd64.tar.lz4"


def _minikube_module() -> Path:
    from infra.toolchain.gobuild import go_env

    version = load_kicbase_pins().minikube.version
    root = Path(go_env().get("GOMODCACHE") or Path.home() / "go" / "pkg" / "mod")
    found = root / "k8s.io" / f"minikube@{version}"
    if not found.is_dir():
        pytest.skip(f"NOT RUN: k8s.io/minikube@{version} is not in the Go module cache ({root}); "
                    "`kfstack tools install minikube` puts it there")
    return found


def _go_const(source: str, name: str) -> str:
    found = re.search(rf'\b{name}\s*=\s*"([^"]*)"', source)
    assert found, name
    return found.group(1)


def test_minikube_pins_agree_with_minikubes_source() -> None:
    root = _minikube_module()
    kic = (root / "pkg/drivers/kic/types.go").read_text()
    image, digest = load_versions().minikube_base_image.split("@sha256:")
    assert image == f"{_go_const(kic, 'gcrRepo')}:{_go_const(kic, 'Version')}"
    assert digest == _go_const(kic, "baseImageSHA")
    pins = load_kicbase_pins()
    assert pins.preload_version == _go_const((root / "pkg/minikube/download/preload.go").read_text(),
                                             "PreloadVersion")
    assert pins.newest_kubernetes == _go_const((root / "pkg/minikube/constants/constants.go").read_text(),
                                               "NewestKubernetesVersion")


def test_an_unpinned_base_image_is_a_keyed_config_error() -> None:
    with pytest.raises(ConfigError, match=r"cluster\.minikube\.baseImage = 'kfstack/kicbase': pin the base image"):
        _config(baseImage="kfstack/kicbase")
    assert _config(baseImage="localhost:5000/kicbase:v1").props()["baseImage"] == "localhost:5000/kicbase:v1"
