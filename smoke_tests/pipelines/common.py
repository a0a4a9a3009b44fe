"""What the sample pipelines share: the base image and the Python packages their steps need.

On a cluster each step pip-installs `packages` into `BASE_IMAGE`; with `kfp.local`'s subprocess
runner the same pip command runs against the current environment, where they are already present
(so nothing is downloaded). A live stack whose model server pins an older scikit-learn passes its
own requirement (`--sklearn-requirement`) so the exported model unpickles there.
"""

from __future__ import annotations

BASE_IMAGE = "python:3.11-slim"
SKLEARN_PACKAGES: tuple[str, ...] = ("scikit-learn", "joblib", "numpy")
MODEL_FILE = "model.joblib"
# The two flowers KServe's own sklearn example sends; both are versicolor (class 1).
IRIS_INSTANCES = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]
IRIS_EXPECTED = [1, 1]  # the file name KServe's sklearn server loads from a model directory


def packages(sklearn_requirement: str | None = None) -> list[str]:
    """The steps' pip requirements; `sklearn_requirement` (e.g. scikit-learn==1.5.2) replaces the default."""
    if not sklearn_requirement:
        return list(SKLEARN_PACKAGES)
    return [sklearn_requirement, *[p for p in SKLEARN_PACKAGES if p != "scikit-learn"]]
