"""The sample pipelines: they compile to the v2 IR a cluster runs, and their steps run here
(the MNIST download branch against a local file, so its checksum check is exercised offline)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from kfp import compiler, dsl

from infra.versions import load_versions
from smoke_tests.pipelines.common import (
    DEFAULT_PACKAGES,
    STEP_LIMITS,
    STEP_REQUESTS,
    StepImage,
    packages,
    step_image_of,
)
from smoke_tests.pipelines.hello import build_hello_pipeline, hello_pipeline
from smoke_tests.pipelines.iris import build_iris_pipeline
from smoke_tests.pipelines.mnist import MNIST_SHA256, MNIST_URL, build_mnist_pipeline, train_digits
from tests.helpers import REPO


@pytest.mark.parametrize("pipeline", [hello_pipeline, build_iris_pipeline(), build_mnist_pipeline()],
                         ids=["hello", "iris", "mnist"])
def test_pipelines_compile_to_v2_ir(pipeline: object, tmp_path: Path) -> None:
    out = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(pipeline, str(out))
    spec = yaml.safe_load(out.read_text())
    assert spec["schemaVersion"] == "2.1.0"
    assert spec["pipelineInfo"]["name"].startswith("kfstack-smoke-")


def test_mnist_pipeline_passes_the_pinned_archive_and_hash(tmp_path: Path) -> None:
    out = tmp_path / "mnist.yaml"
    compiler.Compiler().compile(build_mnist_pipeline(), str(out))
    inputs = yaml.safe_load(out.read_text())["root"]["dag"]["tasks"]["train-digits"]["inputs"]["parameters"]
    assert inputs["mnist_url"]["runtimeValue"]["constant"] == MNIST_URL
    assert inputs["mnist_sha256"]["runtimeValue"]["constant"] == MNIST_SHA256


def test_steps_install_what_the_releases_model_server_runs() -> None:
    versions = load_versions()
    pinned = list(versions.release(versions.default_release).sklearn_server_packages)
    # Without stack outputs (a --kubeconfig target) the suite's default: the default release's pins.
    assert packages() == list(DEFAULT_PACKAGES) == pinned == ["scikit-learn~=1.5.1", "joblib>=1.4,<2", "numpy<2"]
    other = ["scikit-learn~=1.6.1", "joblib>=1.4,<2"]
    assert packages(pinned=other) == other  # a stack's pipelinePackages output
    assert packages("scikit-learn==1.5.2") == ["scikit-learn==1.5.2", "joblib>=1.4,<2", "numpy<2"]
    assert packages("scikit-learn==1.6.0", pinned=other) == ["scikit-learn==1.6.0", "joblib>=1.4,<2"]


def test_compiled_steps_pin_the_model_servers_scikit_learn(tmp_path: Path) -> None:
    """What a cluster runs: the step's own pip command carries the pins."""
    out = tmp_path / "iris.yaml"
    compiler.Compiler().compile(build_iris_pipeline(), str(out))
    executor = yaml.safe_load(out.read_text())["deploymentSpec"]["executors"]["exec-train-iris"]["container"]
    command = " ".join(executor["command"])
    for requirement in ("scikit-learn~=1.5.1", "joblib>=1.4,<2", "numpy<2"):
        assert f"'{requirement}'" in command, command


RUNTIME = "kfstack/kfp-runtime:py3.11-kfp2.15.0"


@pytest.mark.parametrize("build", [build_hello_pipeline, lambda step: build_iris_pipeline(None, step),
                                   lambda step: build_mnist_pipeline(None, step)], ids=["hello", "iris", "mnist"])
def test_a_stacks_step_image_runs_the_steps_with_nothing_installed(build: object, tmp_path: Path) -> None:
    """With a stack's ready step image every executor runs in it and installs nothing: no pip, not
    even kfp (the image has it), so a step needs no package index when it runs."""
    from typing import Any, cast

    out = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(cast(Any, build)(StepImage(RUNTIME, ready=True)), str(out))
    executors = yaml.safe_load(out.read_text())["deploymentSpec"]["executors"].values()
    assert executors
    for executor in executors:
        container = executor["container"]
        assert container["image"] == RUNTIME
        assert container["resources"]["resourceCpuRequest"] == STEP_REQUESTS["cpu"]  # a quota'd namespace runs it
        assert container["resources"]["resourceMemoryLimit"] == STEP_LIMITS["memory"]
        command = " ".join(container["command"] + container.get("args", []))
        assert "-m pip" not in command and "pip install" not in command, command


def test_the_step_image_comes_from_the_stacks_outputs() -> None:
    from smoke_tests.stack_outputs import StackOutputs

    base = {"contractVersion": 1, "ingress": {"namespace": "n", "service": "s", "port": 80}, "users": []}
    assert step_image_of(StackOutputs.parse({**base, "pipelineImage": RUNTIME})) == StepImage(RUNTIME, ready=True)
    assert step_image_of(StackOutputs.parse(base)) == StepImage()  # kfp's way: install when the step starts
    assert step_image_of(None) == StepImage()  # no stack (an endpoint)
    assert StackOutputs.parse({**base, "pipelinePackages": ["scikit-learn~=1.6.1"]}).pipeline_packages == (
        "scikit-learn~=1.6.1",)


def test_kfp_sdk_matches_the_backends_minor_version() -> None:
    """The SDK the suite compiles and submits with is the backend's minor version."""
    import kfp

    backend = load_versions().release(load_versions().default_release).kfp_backend
    assert kfp.__version__.split(".")[:2] == backend.split(".")[:2], (kfp.__version__, backend)
    lock = dict(line.split("==", 1) for line in (REPO / "constraints.txt").read_text().splitlines() if "==" in line)
    for name in ("kfp", "kfp-pipeline-spec", "kfp-server-api"):
        assert lock[name].split(".")[:2] == backend.split(".")[:2], (name, lock[name], backend)


def _fake_mnist(path: Path) -> str:
    rng = np.random.default_rng(0)
    labels = np.arange(200) % 10
    images = np.zeros((200, 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):  # one bright row per digit: trivially separable
        images[i, label * 2] = 200
    images += rng.integers(0, 20, size=images.shape, dtype=np.uint8)
    np.savez(path, x_train=images[:150], y_train=labels[:150], x_test=images[150:], y_test=labels[150:])
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_mnist_branch_verifies_the_archive_and_exports_samples(tmp_path: Path) -> None:
    archive = tmp_path / "mnist.npz"
    digest = _fake_mnist(archive)
    model, samples, metrics = (dsl.Model(uri=str(tmp_path / "model")), dsl.Dataset(uri=str(tmp_path / "samples")),
                               dsl.Metrics(uri=str(tmp_path / "metrics")))
    train_digits("mnist", model, samples, metrics, mnist_url=archive.as_uri(), mnist_sha256=digest,
                 train_size=150, sample_count=10)
    exported = json.loads((tmp_path / "samples").read_text())
    assert exported["labels"] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert len(exported["instances"][0]) == 784
    assert (tmp_path / "model" / "model.joblib").is_file()
    assert metrics.metadata["accuracy"] == 1.0


def test_mnist_branch_refuses_a_wrong_checksum(tmp_path: Path) -> None:
    archive = tmp_path / "mnist.npz"
    _fake_mnist(archive)
    with pytest.raises(ValueError, match=r"sha256 .* expected 0000"):
        train_digits("mnist", dsl.Model(uri=str(tmp_path / "m")), dsl.Dataset(uri=str(tmp_path / "s")),
                     dsl.Metrics(uri=str(tmp_path / "x")), mnist_url=archive.as_uri(), mnist_sha256="0" * 64)


@pytest.mark.render
def test_release_pins_agree_with_the_releases_manifests(manifests_tree: Path) -> None:
    """T1: the KServe and KFP versions in versions.toml are the ones the manifests deploy."""
    release = load_versions().release("v1.11.0")
    runtimes = yaml.safe_load_all((manifests_tree / "applications/kserve/kserve/kserve-cluster-resources.yaml")
                                  .read_text())
    sklearn = next(d for d in runtimes if d and d.get("metadata", {}).get("name") == "kserve-sklearnserver")
    assert sklearn["spec"]["containers"][0]["image"] == f"kserve/sklearnserver:{release.kserve}"
    pipeline = yaml.safe_load((manifests_tree / "applications/pipeline/upstream/base/pipeline/kustomization.yaml")
                              .read_text())
    api_server = next(i for i in pipeline["images"] if i["name"] == "ghcr.io/kubeflow/kfp-api-server")
    assert api_server["newTag"] == release.kfp_backend
