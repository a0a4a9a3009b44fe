"""The images of a Kubeflow Pipelines v2 run ([component_images], [image_recipes]) without building them.

Their names and commands against the v1.11.0 multi-user manifests (T1), the recipes' inputs keys, and
the mysql:8.4 stand-in's entrypoint with a fake server. `tests/test_live_kfp_images.py` runs the images.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.nodeimage import kfp_recipes, recipe_images, recipes
from infra.nodeimage.build import Build
from infra.nodeimage.components import component_images
from infra.nodeimage.pins import load_pins
from infra.nodeimage.steps import StepLog
from infra.toolchain.model import load_toolchain

# The multi-user env Kubeflow v1.11.0's example deploys, and its objects a v2 run does not need.
KFP_ENV = "applications/pipeline/upstream/env/cert-manager/platform-agnostic-multi-user"
NOT_ON_A_V2_RUN = {"cache-server", "metadata-envoy-deployment", "metadata-writer", "ml-pipeline-ui",
                   "ml-pipeline-viewer-crd", "ml-pipeline-visualizationserver", "ml-pipeline-scheduledworkflow"}
RUNTIME = "kfstack/kfp-runtime:py3.11-kfp2.15.0"


@pytest.fixture(scope="module")
def kfp_workloads(manifests_tree: Path) -> list[dict[str, Any]]:
    from infra.toolchain.locate import tool_path

    out = subprocess.run([str(tool_path("kustomize")), "build", str(manifests_tree / KFP_ENV)], check=True,
                         capture_output=True, text=True, timeout=300).stdout
    return [d for d in yaml.safe_load_all(out) if d and d["kind"] in ("Deployment", "StatefulSet")]


def _containers(workloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for w in workloads if w["metadata"]["name"] not in NOT_ON_A_V2_RUN
            for c in w["spec"]["template"]["spec"]["containers"]]


@pytest.mark.render
def test_every_image_a_v2_run_needs_is_built_here_under_its_upstream_name(
        kfp_workloads: list[dict[str, Any]]) -> None:
    """T1: the workloads' images, and the driver and launcher the API server starts, are all
    [component_images]; a binary image's path is what the manifest's command runs."""
    images = component_images()
    wanted = {c["image"] for c in _containers(kfp_workloads)}
    [api] = [c for c in _containers(kfp_workloads) if c["name"] == "ml-pipeline-api-server"]
    env = {e["name"]: e.get("value") for e in api["env"]}
    wanted |= {env["V2_DRIVER_IMAGE"], env["V2_LAUNCHER_IMAGE"], "quay.io/argoproj/argoexec:v3.7.3"}
    assert wanted - set(images) == set()
    for container in _containers(kfp_workloads):
        spec = images[container["image"]]
        command = container.get("command", [])
        if spec.binary and command:  # an absolute command is the path; a bare one is found on PATH
            assert command[0] in (spec.path, Path(spec.path).name), (container["image"], command)
            assert Path(spec.path).parent.as_posix() in ("/bin", "/usr/bin", "/usr/local/bin")
    [controller] = [c for c in _containers(kfp_workloads) if c["name"] == "workflow-controller"]
    assert controller["args"][controller["args"].index("--executor-image") + 1] in images


@pytest.mark.render
def test_the_stand_ins_take_the_manifests_commands(kfp_workloads: list[dict[str, Any]]) -> None:
    """T1: what the stand-in images must accept: MLMD's command path and flags, MySQL-only flags for
    the MariaDB entrypoint to drop, the hook's `python`."""
    from infra.kfp.mlmd_server import parse_flags

    by_image = {c["image"]: c for c in _containers(kfp_workloads)}
    mlmd = by_image["gcr.io/tfx-oss-public/ml_metadata_store_server:1.14.0"]
    assert mlmd["command"] == ["/bin/metadata_store_server"]
    assert kfp_recipes.MLMD_WRAPPER.endswith('/opt/mlmd/mlmd_server.py "$@"\n')
    values = {"MYSQL_DATABASE": "metadb", "MYSQL_HOST": "mysql", "MYSQL_PORT": "3306", "DBCONFIG_USER": "root",
              "DBCONFIG_PASSWORD": ""}
    args = list(mlmd["args"])
    for name, value in values.items():
        args = [a.replace(f"$({name})", value) for a in args]
    settings = parse_flags(args)
    assert (settings.backend, settings.host, settings.port, settings.database) == ("mysql", "mysql", 3306, "metadb")
    mysql = by_image["mysql:8.4"]
    assert {"--authentication-policy=mysql_native_password", "--mysql-native-password=ON"} <= set(mysql["args"])
    assert mysql["securityContext"]["runAsUser"] == int(recipes.load_recipes()["mariadb"].get("user"))
    hook = by_image["docker.io/alpine/k8s:1.32.3"]
    assert hook["command"][0] == "python"


def test_every_recipe_has_a_builder_and_its_binaries_come_from_the_toolchain() -> None:
    known = recipes.load_recipes()
    toolchain = load_toolchain()
    for spec in component_images().values():
        if spec.recipe:
            assert spec.recipe in known
            assert spec.recipe in kfp_recipes.BUILDERS or spec.recipe in ("kserve-python", "standin-gateway")
    wanted = [c.recipe for c in component_images().values() if c.recipe]
    tools = {toolchain.tool_for_binary(b).name for b in recipe_images.binaries_of(wanted)}
    assert tools == {"kfp-apiserver", "kfp-backend", "seaweedfs"}
    assert toolchain.get("kfp-apiserver").source.cgo  # type: ignore[union-attr]


def test_the_runtime_pins_what_the_sklearn_server_loads_models_with() -> None:
    """A model the sample steps write must load in the release's sklearn server: same constraints."""
    packages, constraints = kfp_recipes._pins(recipes.load_recipes()["kfp-runtime"], with_release=True)
    assert "kfp==2.15.0" in packages and "scikit-learn~=1.5.1" in packages
    server = recipes.load_recipes()["kserve-python"].get("constraints")
    assert constraints.splitlines() == server


def _key_of(build: Build, monkeypatch: pytest.MonkeyPatch, files: dict[str, Path | str]) -> tuple[str, str]:
    built: list[str] = []
    monkeypatch.setattr(kfp_recipes, "docker_build", lambda context, ref, key, target="": built.append(key))
    monkeypatch.setattr(kfp_recipes, "image_key", lambda ref: build.keys.get(ref))
    monkeypatch.setattr(kfp_recipes, "replacing", lambda ref, make: make)
    kfp_recipes._build_image(build, ("kfstack/debian:bookworm", "base1"), "demo:1", "FROM {base}\n", files)
    state = build.log.entries[-1][1]
    if built:
        build.keys["demo:1"] = built[0]
    return state, build.keys["demo:1"]


def test_a_recipe_image_is_rebuilt_only_when_a_file_it_copies_changes(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "apiserver"
    binary.write_bytes(b"one")
    build = Build(pins=load_pins(), log=StepLog(lambda line: None))
    state, first = _key_of(build, monkeypatch, {"bin0": binary, "config/x.json": "{}"})
    assert state == "built"
    assert _key_of(build, monkeypatch, {"bin0": binary, "config/x.json": "{}"}) == ("cached", first)
    binary.write_bytes(b"two")
    state, second = _key_of(build, monkeypatch, {"bin0": binary, "config/x.json": "{}"})
    assert state == "built" and second != first
    state, third = _key_of(build, monkeypatch, {"bin0": binary, "config/x.json": "{ }"})
    assert state == "built" and third != second


# --- the mysql:8.4 stand-in's entrypoint -------------------------------------------------------------

def _entrypoint(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The entrypoint with a `mariadbd` on PATH that prints the arguments it got."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "mariadbd").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (fake / "mariadbd").chmod(0o755)
    return subprocess.run([str(kfp_recipes.KFP_DIR / "mariadb-entrypoint.sh"), *args], capture_output=True,
                          text=True, timeout=30,
                          env={"PATH": f"{fake}:{os.environ['PATH']}", **(env or {})})


def test_the_entrypoint_drops_mysql_only_flags_and_passes_the_rest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "mysql").mkdir(parents=True)  # initialised already: straight to the server
    out = _entrypoint(tmp_path, "--datadir", str(data), "--authentication-policy=mysql_native_password",
                      "--mysql-native-password=ON", "--disable-log-bin")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["--datadir", str(data), "--disable-log-bin"]
    assert "dropping MySQL-only option --mysql-native-password=ON" in out.stderr


def test_the_entrypoint_runs_other_commands_as_they_are(tmp_path: Path) -> None:
    out = _entrypoint(tmp_path, "echo", "--authentication-policy=x")
    assert out.stdout == "--authentication-policy=x\n"


def test_an_empty_datadir_needs_a_password_setting(tmp_path: Path) -> None:
    out = _entrypoint(tmp_path, f"--datadir={tmp_path / 'empty'}")
    assert out.returncode == 1
    assert "set MYSQL_ALLOW_EMPTY_PASSWORD or MYSQL_ROOT_PASSWORD" in out.stderr
