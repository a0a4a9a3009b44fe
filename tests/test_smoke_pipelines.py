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

from smoke_tests.pipelines.common import packages
from smoke_tests.pipelines.hello import hello_pipeline
from smoke_tests.pipelines.iris import build_iris_pipeline
from smoke_tests.pipelines.mnist import MNIST_SHA256, MNIST_URL, build_mnist_pipeline, train_digits


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


def test_sklearn_requirement_replaces_the_default() -> None:
    assert packages() == ["scikit-learn", "joblib", "numpy"]
    assert packages("scikit-learn==1.5.2") == ["scikit-learn==1.5.2", "joblib", "numpy"]


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
