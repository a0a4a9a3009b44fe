"""Preloaded images that no workload of the render runs, loaded beside the apply instead of before it.

A kind create holds every in-cluster object until the images it preloads are in the node: each
workload's pod must find its image there. Some preloaded images no workload of the render names:
the pipelines' step, driver and launcher images and Argo's executor (started by runs), KServe's
model server and storage initializer (started by InferenceServices), the in-cluster suite's image.
Those need not hold the apply: `late_images` splits them off by what the render's pod templates
name, and `LateImagesResource` loads them (into each node only what it lacks, by image ID) as a
resource of its own that the apply does not wait for. `pulumi up` still ends only once they are in,
so a check that starts a run or a model server finds its image in the node.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from infra.clusters.local import note
from infra.clusters.preload import load_lacking, normalize
from infra.patches.images import containers
from smoke_tests.run import run

# What runs pods from a template of its own: a controller creates their pods when the object applies.
WORKLOAD_KINDS = frozenset({"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"})


def workload_images(objects: Iterable[dict[str, Any]]) -> set[str]:
    """The images (containerd's names) the objects' pod templates run."""
    return {normalize(c["image"]) for obj in objects if obj.get("kind") in WORKLOAD_KINDS for c in containers(obj)}


def late_images(preload: Sequence[str], objects: Iterable[dict[str, Any]]) -> list[str]:
    """The preloaded images no workload among `objects` runs, in the order given."""
    needed = workload_images(objects)
    return [image for image in dict.fromkeys(preload) if normalize(image) not in needed]


def labelled_containers(label: str) -> list[str]:
    """The ids of the containers carrying `label` (`key=value`): a local cluster's nodes."""
    return run(["docker", "ps", "-aq", "--filter", f"label={label}"], timeout=60).stdout.split()


class LateImagesProvider(ResourceProvider):
    """create and update load what the nodes lack; delete leaves the images to the cluster's own."""

    def _load(self, props: dict[str, Any]) -> None:
        nodes = labelled_containers(props["nodeLabel"])
        if not nodes:
            raise RuntimeError(f"no node container labelled {props['nodeLabel']} to load images into")
        load_lacking(nodes, list(props["images"]), note)

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._load(props)
        return CreateResult(f"late-images:{props['nodeLabel']}", props)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("images", "nodeLabel") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[])

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._load(news)
        return UpdateResult(news)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        return None  # the images live in the nodes, and go with them


class LateImagesResource(Resource):
    """Loads `images` into the nodes labelled `node_label` once `opts` says the cluster is there."""

    def __init__(self, name: str, node_label: str, images: Sequence[str], opts: pulumi.ResourceOptions) -> None:
        super().__init__(LateImagesProvider(), name, {"nodeLabel": node_label, "images": list(images)}, opts)
