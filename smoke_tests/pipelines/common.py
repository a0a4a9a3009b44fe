"""What the sample pipelines share: the image their steps run in and the Python packages they need.

A stack may name its own step image (its `pipelineImage` output, e.g. kind-local's runtime image
built with kfp and these packages): steps then run in it as they are, nothing installed at run time
(`install_kfp_package=False`, no `packages_to_install`). Otherwise each step pip-installs kfp and
its packages into `BASE_IMAGE`, as kfp does by default. The models it exports are
loaded by the release's KServe sklearn server, which unpickles them with its own scikit-learn, so
the steps install what that server runs: the release's `sklearn_server_packages` in
`infra/versions.toml` (`--sklearn-requirement` replaces the scikit-learn entry). With `kfp.local`'s
subprocess runner the same pip command runs in the current environment, so the local target asks
only for what is already installed there (`LOCAL_PACKAGES`: nothing is downloaded or changed), and
its model servers load the models with that same scikit-learn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

BASE_IMAGE = "python:3.11-slim"
LOCAL_PACKAGES: tuple[str, ...] = ("scikit-learn", "joblib", "numpy")
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


def server_packages(release: str | None = None) -> list[str]:
    """What the release's KServe sklearn server runs (the default release when unknown or None)."""
    from infra.versions import load_versions

    versions = load_versions()
    tag = release if release in versions.releases else versions.default_release
    return list(versions.release(tag).sklearn_server_packages)


def packages(sklearn_requirement: str | None = None, *, release: str | None = None) -> list[str]:
    """The steps' pip requirements on a cluster; `sklearn_requirement` (e.g. scikit-learn==1.5.2)
    replaces the release's scikit-learn pin."""
    pinned = server_packages(release)
    if not sklearn_requirement:
        return pinned
    return [sklearn_requirement, *[p for p in pinned if _name(p) != "scikit-learn"]]
