"""Local images into a kind cluster's nodes: only what a node lacks, by image ID, while it starts.

`kind load docker-image` also compares image IDs, but all or nothing: when one image is missing on
one node it saves every named image into one tar and imports the whole of it, and it can only run
once `kind create cluster` has returned. Here each node gets exactly the images it lacks (a name it
has with another ID is loaded again; the same ID under that name is skipped), streamed from
`docker save` into the node's containerd with the command kind itself runs (`ctr images import`),
and a create starts the import as soon as the node's containerd answers, while kubeadm brings up
the control plane: that overlap is most of a create's preload time.

Docker's image ID (`docker image inspect`) and the CRI's image ID (`crictl images`) are both the
digest of the image's config, so they compare directly.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from smoke_tests.run import CommandError, run
from smoke_tests.wait import wait_until

IMPORT_TIMEOUT_S = 900
NODE_TIMEOUT_S = 300  # for the node containers and their containerd, from the start of a create
_SNAPSHOTTER = re.compile(r'^\s*snapshotter\s*=\s*"([^"]+)"', re.MULTILINE)


class PreloadError(RuntimeError):
    """An image could not be loaded into a node; says which, where and what the commands said."""


def normalize(ref: str) -> str:
    """An image reference as containerd names it: `kserve/x:v1` is `docker.io/kserve/x:v1`,
    `busybox` is `docker.io/library/busybox:latest`."""
    name, _, digest = ref.partition("@")
    first, _, rest = name.partition("/")
    if not rest:
        name = f"docker.io/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}"
    if not digest and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def lacking(wanted: dict[str, str], present: dict[str, str]) -> list[str]:
    """The wanted references (name -> local image ID) a node does not hold under that name with
    that ID (`present`: normalized name -> the node's image ID), in the order given."""
    return [ref for ref, image_id in wanted.items() if present.get(normalize(ref)) != image_id]


def local_image_ids(images: Sequence[str]) -> dict[str, str]:
    """Each reference's image ID in the local Docker daemon; fails naming the ones it lacks."""
    ids: dict[str, str] = {}
    absent = []
    for ref in dict.fromkeys(images):
        result = run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], timeout=60, check=False)
        if result.returncode != 0:
            absent.append(ref)
        else:
            ids[ref] = result.stdout.strip()
    if absent:
        raise PreloadError(f"image(s) to preload are not in the local Docker daemon: {', '.join(absent)} "
                           "(build them: `kfstack nodeimage components`, or `docker pull` where a registry answers)")
    return ids


def node_image_ids(node: str) -> dict[str, str]:
    """What the node's containerd holds for Kubernetes: normalized name -> image ID (`crictl`)."""
    # crictl's own timeout is 2 s, too short for a containerd busy importing on a loaded machine.
    listing = json.loads(run(["docker", "exec", node, "crictl", "--timeout", "50s", "images", "-o", "json"],
                             timeout=60).stdout)
    return {tag: image["id"] for image in listing.get("images") or [] for tag in image.get("repoTags") or []}


def snapshotter(node: str) -> str:
    """The CRI's snapshotter (kind's entrypoint may change it from overlayfs), as kind reads it."""
    found = _SNAPSHOTTER.search(run(["docker", "exec", node, "containerd", "config", "dump"], timeout=60).stdout)
    return found.group(1) if found else "overlayfs"


def import_images(node: str, refs: Sequence[str]) -> None:
    """`docker save REFS | ctr images import -` into the node: one stream, no tar on disk."""
    save = ["docker", "save", *refs]
    load = ["docker", "exec", "-i", node, "ctr", "--namespace=k8s.io", "images", "import", "--all-platforms",
            "--digests", f"--snapshotter={snapshotter(node)}", "-"]
    with subprocess.Popen(save, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as saver, \
            subprocess.Popen(load, stdin=saver.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as loader:
        assert saver.stdout is not None
        saver.stdout.close()  # the loader holds the pipe: a loader that dies stops the saver
        try:
            out, err = loader.communicate(timeout=IMPORT_TIMEOUT_S)
            save_err = saver.communicate(timeout=60)[1]
        except subprocess.TimeoutExpired as exc:
            saver.kill()
            loader.kill()
            raise CommandError(load, None, "", "", reason=f"timed out after {IMPORT_TIMEOUT_S}s") from exc
    if saver.returncode != 0:
        raise CommandError(save, saver.returncode, "", save_err.decode(errors="replace"))
    if loader.returncode != 0:
        raise CommandError(load, loader.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


@dataclass
class NodeLoad:
    """What one node got: the images it lacked, and how long their import took."""

    node: str
    wanted: int
    loaded: list[str]
    seconds: float


def load_lacking(nodes: Sequence[str], images: Sequence[str], say: Callable[[str], None],
                 wanted: dict[str, str] | None = None) -> list[NodeLoad]:
    """Load into each node the images it lacks (by ID), then check that none is lacking any more.
    `wanted`: the images' local IDs, when already read."""
    wanted = wanted if wanted is not None else local_image_ids(images)
    loads = []
    for node in nodes:
        need = lacking(wanted, node_image_ids(node))
        start = time.monotonic()
        if need:
            import_images(node, need)
            still = lacking({ref: wanted[ref] for ref in need}, node_image_ids(node))
            if still:
                raise PreloadError(f"node {node}: after the import its containerd still lacks {', '.join(still)}")
        loads.append(NodeLoad(node, len(wanted), need, time.monotonic() - start))
        say(f"preload {node}: {len(need)} of {len(wanted)} image(s) lacking, loaded in "
            f"{time.monotonic() - start:.1f}s" + (f" ({', '.join(need)})" if need else ""))
    return loads


@dataclass
class Preloader:
    """Loads images into a cluster's nodes beside its create: `start()` before `kind create
    cluster` (it fails there, before anything exists, when an image is not in the local daemon),
    `finish()` after it. The thread waits for `count` node containers (from `nodes()`) whose
    containerd answers (and, with `ready`, that raises CommandError until a node may take them),
    then loads what each lacks."""

    nodes: Callable[[], list[str]]
    count: int
    images: Sequence[str]
    say: Callable[[str], None]
    ready: Callable[[str], object] | None = None
    loads: list[NodeLoad] = field(default_factory=list)
    _wanted: dict[str, str] = field(default_factory=dict)
    _error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Preloader:
        if self.images:
            self._wanted = local_image_ids(self.images)
            self._thread = threading.Thread(target=self._run, name="preload", daemon=True)
            self._thread.start()
        return self

    def _ready_nodes(self) -> tuple[bool, list[str]]:
        if self._stop.is_set():
            raise PreloadError("the cluster's create ended before its nodes' containerd answered")
        found = self.nodes()
        if len(found) < self.count:
            return False, found
        for node in found:
            node_image_ids(node)  # raises CommandError until the node runs and its containerd answers
            if self.ready is not None:
                self.ready(node)
        return True, found

    def _run(self) -> None:
        try:
            nodes = wait_until(self._ready_nodes, timeout=NODE_TIMEOUT_S, interval=1,
                               what=f"{self.count} node(s) whose containerd answers", retry_on=(CommandError, OSError))
            self.loads = load_lacking(nodes, self.images, self.say, self._wanted)
        except BaseException as exc:  # handed to finish(), in the thread that created the cluster
            self._error = exc

    def stop(self) -> None:
        """The create failed: end the wait for nodes (an import under way fails with its node)."""
        self._stop.set()

    def finish(self) -> list[NodeLoad]:
        """Wait for the loads; raise what went wrong in them."""
        if self._thread is not None:
            self._thread.join(IMPORT_TIMEOUT_S + NODE_TIMEOUT_S)
            if self._thread.is_alive():
                raise PreloadError(f"loading {len(self.images)} image(s) did not end in "
                                   f"{IMPORT_TIMEOUT_S + NODE_TIMEOUT_S}s")
        if self._error is not None:
            raise PreloadError(f"preloading images failed: {self._error}") from self._error
        return self.loads
