"""Train a small handwritten-digit classifier and export it with held-out samples to check it by.

The dataset source is a parameter: `mnist` downloads the standard MNIST archive and verifies its
SHA-256 (live stacks, which have network); `digits` uses scikit-learn's bundled 8x8 digits (no
network, the local target). Either way the step exports a KServe sklearn model directory and a
`samples` JSON of held-out images with their labels, which the inference check sends to the served
model: the pipeline, not the check, decides what "correct" means.
"""

# No `from __future__ import annotations`: kfp reads the real annotation objects.
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Model, Output

from smoke_tests.pipelines.common import StepImage, packages, sized

SOURCES = ("mnist", "digits")
# Keras' copy of MNIST as one .npz (x_train, y_train, x_test, y_test) and the hash Keras verifies.
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
SAMPLE_COUNT = 10


def train_digits(source: str, model: Output[Model], samples: Output[Dataset], metrics: Output[Metrics],
                 mnist_url: str = "", mnist_sha256: str = "", train_size: int = 6000,
                 sample_count: int = 10) -> None:
    """Fit a logistic regression on MNIST (or the bundled digits) and export model and samples.

    kfp ships only this function's source, so it is self-contained: defaults are literals and the
    pipeline passes the URL and hash."""
    import hashlib
    import json
    import os
    import tempfile
    import urllib.request

    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    if source == "digits":
        from sklearn.datasets import load_digits

        images, labels = load_digits(return_X_y=True)
        images = images / 16.0
        split = int(len(images) * 0.75)
        x_train, y_train = images[:split], labels[:split]
        x_test, y_test = images[split:], labels[split:]
    elif source == "mnist":
        with tempfile.TemporaryDirectory() as tmp:
            archive = os.path.join(tmp, "mnist.npz")
            urllib.request.urlretrieve(mnist_url, archive)
            with open(archive, "rb") as fh:
                digest = hashlib.sha256(fh.read()).hexdigest()
            if digest != mnist_sha256:
                raise ValueError(f"{mnist_url}: sha256 {digest}, expected {mnist_sha256}")
            with np.load(archive) as data:
                x_train = data["x_train"][:train_size].reshape(-1, 784) / 255.0
                y_train = data["y_train"][:train_size]
                x_test = data["x_test"].reshape(-1, 784) / 255.0
                y_test = data["y_test"]
    else:
        raise ValueError(f"unknown dataset source {source!r}: use mnist or digits")

    classifier = LogisticRegression(max_iter=300).fit(x_train, y_train)
    accuracy = float(classifier.score(x_test, y_test))
    os.makedirs(model.path, exist_ok=True)
    joblib.dump(classifier, os.path.join(model.path, "model.joblib"))
    model.metadata["framework"] = "sklearn"
    model.metadata["source"] = source
    with open(samples.path, "w", encoding="utf-8") as fh:
        json.dump({"instances": x_test[:sample_count].round(6).tolist(),
                   "labels": [int(v) for v in y_test[:sample_count]]}, fh)
    metrics.log_metric("accuracy", accuracy)
    print(f"{source} test accuracy {accuracy:.3f}")


class DigitsOutputs(NamedTuple):
    model: Model
    samples: Dataset


def build_mnist_pipeline(requirements: list[str] | None = None, step: StepImage | None = None):
    """The MNIST pipeline with its steps' packages fixed (default: `common.packages()`)."""
    options = (step or StepImage()).component_options(packages() if requirements is None else requirements)
    train = dsl.component(train_digits, **options)

    @dsl.pipeline(name="kfstack-smoke-mnist", description="Train a digit classifier and export it.")
    def mnist_pipeline(source: str = "mnist", train_size: int = 6000) -> DigitsOutputs:
        step = sized(train(source=source, train_size=train_size, sample_count=SAMPLE_COUNT,
                           mnist_url=MNIST_URL, mnist_sha256=MNIST_SHA256))
        return DigitsOutputs(model=step.outputs["model"], samples=step.outputs["samples"])

    return mnist_pipeline
