"""What the sample pipelines share: the image their steps run in and the Python packages they need.

A stack may name its own step image (its `pipelineImage` output, e.g. kind-local's runtime image
built with kfp and these packages): steps then run in it as they are, nothing installed at run time
(`install_kfp_package=False`, no `packages_to_install`). Otherwise each step pip-installs kfp and
its packages into `BASE_IMAGE`, as kfp does by default. The models it exports are
loaded by the release's KServe sklearn server, which unpickles them with its own scikit-learn, so
the steps install what that server runs: the stack's `pipelinePackages` output (the project writes
the release's `sklearn_server_packages` from `infra/versions.toml`), or, for a target without stack
outputs, `DEFAULT_PACKAGES` (Kubeflow v1.11.0's server; a test keeps it equal to the project's pin);
`--sklearn-requirement` replaces the scikit-learn entry. With `kfp.local`'s
subprocess runner the same pip command runs in the current environment, so the local target asks
only for what is already installed there (`LOCAL_PACKAGES`: nothing is downloaded or changed), and
its model servers load the models with that same scikit-learn.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

BASE_IMAGE = "python:3.11-slim"
LOCAL_PACKAGES: tuple[str, ...] = ("scikit-learn", "joblib", "numpy")
# What KServe's sklearn server (kserve/sklearnserver:v0.15.2, Kubeflow v1.11.0) loads models with.
DEFAULT_PACKAGES: tuple[str, ...] = ("scikit-learn~=1.5.1", "joblib>=1.4,<2", "numpy<2")
MODEL_FILE = "model.joblib"  # the file name KServe's sklearn server loads from a model directory
# The two flowers KServe's own sklearn example sends; both are versicolor (class 1).
IRIS_INSTANCES = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]
IRIS_EXPECTED = [1, 1]


@dataclass(frozen=True)
class StepImage:
    """The image a step runs in; `ready`: it already holds kfp and the steps' packages."""

    image: str = BASE_IMAGE
    ready: bool = False

    def component_options(self, requirements: list[str]) -> dict[str, Any]:
        """dsl.component's arguments: a ready image installs nothing, any other installs kfp and
        `requirements` when the step starts."""
        if self.ready:
            return {"base_image": self.image, "install_kfp_package": False}
        return {"base_image": self.image, "packages_to_install": list(requirements)}


# What each step asks for: a profile namespace with a cpu or memory quota refuses a pod that states
# no requests, and the sample models are small (a 2-core kind node has about 0.2 CPU to spare).
STEP_REQUESTS = {"cpu": "50m", "memory": "256Mi"}
STEP_LIMITS = {"cpu": "1", "memory": "1Gi"}


def sized(task: Any) -> Any:
    """A pipeline task with the steps' requests and limits (kfp.local ignores them)."""
    return (task.set_cpu_request(STEP_REQUESTS["cpu"]).set_memory_request(STEP_REQUESTS["memory"])
            .set_cpu_limit(STEP_LIMITS["cpu"]).set_memory_limit(STEP_LIMITS["memory"]))


def step_image_of(outputs: Any) -> StepImage:
    """The step image a stack's outputs name (smoke_tests.stack_outputs.StackOutputs), else kfp's way."""
    image = getattr(outputs, "pipeline_image", None)
    return StepImage(image, ready=True) if image else StepImage()


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def packages(sklearn_requirement: str | None = None, *, pinned: Sequence[str] = ()) -> list[str]:
    """The steps' pip requirements on a cluster: `pinned` (the stack's `pipelinePackages`), else
    `DEFAULT_PACKAGES`; `sklearn_requirement` (e.g. scikit-learn==1.5.2) replaces the scikit-learn pin."""
    pinned = list(pinned or DEFAULT_PACKAGES)
    if not sklearn_requirement:
        return pinned
    return [sklearn_requirement, *[p for p in pinned if _name(p) != "scikit-learn"]]
