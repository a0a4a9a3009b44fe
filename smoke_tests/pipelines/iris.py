"""Train a small iris classifier and export it as a KServe sklearn model directory.

The exported directory (`model.joblib` inside) is what the inference checks serve: at the local
target the ModelServer loads it from kfp.local's pipeline root; on a cluster an InferenceService
loads it from the artifact store (train, then serve).
"""

# No `from __future__ import annotations`: kfp reads the real annotation objects.
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Metrics, Model, Output

from smoke_tests.pipelines.common import StepImage, packages, sized


def train_iris(model: Output[Model], metrics: Output[Metrics], max_iter: int = 1000) -> None:
    """Fit a logistic regression on scikit-learn's bundled iris data (no download) and export it."""
    import os

    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    features, labels = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.2, random_state=0, stratify=labels)
    classifier = LogisticRegression(max_iter=max_iter).fit(x_train, y_train)
    accuracy = float(classifier.score(x_test, y_test))
    os.makedirs(model.path, exist_ok=True)
    joblib.dump(classifier, os.path.join(model.path, "model.joblib"))
    model.metadata["framework"] = "sklearn"
    metrics.log_metric("accuracy", accuracy)
    print(f"iris test accuracy {accuracy:.3f}")


class IrisOutputs(NamedTuple):
    model: Model


def build_iris_pipeline(requirements: list[str] | None = None, step: StepImage | None = None):
    """The iris pipeline with its steps' packages fixed (kfp binds them when a component is made):
    by default what the default release's model server runs (`common.packages`)."""
    options = (step or StepImage()).component_options(packages() if requirements is None else requirements)
    train = dsl.component(train_iris, **options)

    @dsl.pipeline(name="kfstack-smoke-iris", description="Train an iris classifier and export it.")
    def iris_pipeline(max_iter: int = 1000) -> IrisOutputs:
        step = sized(train(max_iter=max_iter))
        return IrisOutputs(model=step.outputs["model"])

    return iris_pipeline
