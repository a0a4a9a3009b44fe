"""The image map: every container image the stack runs, rewritten to where the stack gets it.

Air-gapped installs mirror upstream's images into their own registry; machines that build images
locally (see the live tier) run them under their own names. `images.registry` moves every image
under one registry (keeping its repository path), `images.overrides` names exact replacements
(they win), and `images.pullPolicy` is set on each container whose image the map rewrote (an
upstream `Always` or `:latest` would otherwise make the kubelet pull what is only local).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from infra.config import ImagesConfig, StackConfig
from infra.manifests.objects import Rendered

Obj = dict[str, Any]
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
DOCKER_HUB = "docker.io"


def split_registry(image: str) -> tuple[str, str]:
    """(registry host, repository path and tag/digest), with Docker Hub's implicit names made
    explicit: `busybox:1` is docker.io's `library/busybox:1`."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return DOCKER_HUB, image if rest else f"library/{image}"


def mapped_image(image: str, images: ImagesConfig) -> str:
    """Where the stack gets `image`: an exact override, else the mirror registry, else itself."""
    if image in images.overrides:
        return images.overrides[image]
    if images.registry:
        return f"{images.registry}/{split_registry(image)[1]}"
    return image


def containers(node: Any) -> Iterator[Obj]:
    """Every container spec in an object, wherever it sits: pod templates of workloads, CronJobs'
    job templates, and custom resources that embed containers (KServe's serving runtimes)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in CONTAINER_LISTS and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict) and isinstance(c.get("image"), str))
            else:
                yield from containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from containers(item)


def images_of(objects: list[Obj]) -> list[str]:
    """The sorted, distinct images the objects run: the list an air-gapped user mirrors."""
    return sorted({c["image"] for obj in objects for c in containers(obj)})


def apply(rendered: Rendered, cfg: StackConfig) -> None:
    images = cfg.images
    if not images.active:
        return
    # The pull policy is for every image, moved or not: images loaded into the nodes (kind-local)
    # or mirrored must not be pulled `Always` (upstream's KServe managers, a `:latest` tag).
    rewritten = 0
    for obj in rendered.objects:
        for container in containers(obj):
            target = mapped_image(container["image"], images)
            moved = target != container["image"]
            if moved:
                container["image"] = target
                rewritten += 1
            if images.pull_policy:
                container["imagePullPolicy"] = images.pull_policy
    rendered.adjustments.append(f"images({rewritten})")
