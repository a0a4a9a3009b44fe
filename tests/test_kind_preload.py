"""T0: which images a kind node lacks, by image ID under each name (infra/clusters/preload.py)."""

from __future__ import annotations

import shutil

import pytest

from infra.clusters import preload
from infra.clusters.preload import Preloader, PreloadError, lacking, normalize
from infra.names import unique_name
from smoke_tests.run import run

A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


@pytest.mark.parametrize(("ref", "containerd"), [
    ("kserve/sklearnserver:v0.15.2", "docker.io/kserve/sklearnserver:v0.15.2"),
    ("busybox", "docker.io/library/busybox:latest"),
    ("nginx:1.27", "docker.io/library/nginx:1.27"),
    ("docker.io/bitnamisecure/kubectl:latest", "docker.io/bitnamisecure/kubectl:latest"),
    ("ghcr.io/dexidp/dex:v2.44.0", "ghcr.io/dexidp/dex:v2.44.0"),
    ("localhost/x", "localhost/x:latest"),
    ("registry:5000/team/x", "registry:5000/team/x:latest"),
    ("quay.io/x/y@sha256:" + "c" * 64, "quay.io/x/y@sha256:" + "c" * 64),
])
def test_references_are_compared_as_containerd_names_them(ref: str, containerd: str) -> None:
    assert normalize(ref) == containerd


def test_the_same_id_under_the_name_is_skipped_another_id_is_loaded_again() -> None:
    wanted = {"kserve/x:v1": A, "ghcr.io/d/dex:v2": B, "quay.io/new:v1": A}
    present = {"docker.io/kserve/x:v1": A,   # same name, same ID: skipped
               "ghcr.io/d/dex:v2": A,         # same name, another ID (rebuilt here): loaded again
               "quay.io/other:v1": A}         # the ID under another name only: the name is lacking
    assert lacking(wanted, present) == ["ghcr.io/d/dex:v2", "quay.io/new:v1"]
    assert lacking(wanted, {}) == list(wanted)
    assert lacking(wanted, {"docker.io/kserve/x:v1": A, "ghcr.io/d/dex:v2": B, "quay.io/new:v1": A}) == []


def test_a_create_that_fails_before_its_nodes_answer_ends_the_preload_with_that_reason(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The cluster's create failed (no node ever appeared): the waiting thread stops at once and
    the error says so, instead of waiting out its timeout."""
    monkeypatch.setattr(preload, "local_image_ids", lambda images: dict.fromkeys(images, A))
    preloader = Preloader(nodes=list, count=1, images=["kserve/x:v1"], say=print).start()
    preloader.stop()
    with pytest.raises(PreloadError, match="create ended before its nodes' containerd answered"):
        preloader.finish()


def test_nothing_to_preload_starts_nothing() -> None:
    def never() -> list[str]:
        raise AssertionError("no image to load: the nodes are not even looked for")

    assert Preloader(nodes=never, count=1, images=[], say=print).start().finish() == []


def test_an_image_missing_from_the_local_daemon_fails_before_any_node_is_looked_for() -> None:
    if shutil.which("docker") is None or run(["docker", "info"], timeout=60, check=False).returncode != 0:
        pytest.skip("NOT RUN: no Docker daemon answers here")
    looked: list[str] = []

    def nodes() -> list[str]:
        looked.append("nodes")
        return []

    absent = f"kfstack/{unique_name('never-built')}:v1"
    with pytest.raises(PreloadError, match=f"not in the local Docker daemon: {absent}"):
        Preloader(nodes=nodes, count=1, images=[absent], say=print).start()
    assert looked == []  # no thread started: the create never began


def test_a_node_is_loaded_only_once_it_is_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    """minikube's node: its containerd answers early, but minikube restarts it until kubelet runs;
    the load waits for `ready` (which raises CommandError until then), and then loads."""
    from smoke_tests.run import CommandError

    events: list[str] = []
    monkeypatch.setattr(preload, "local_image_ids", lambda images: dict.fromkeys(images, A))
    monkeypatch.setattr(preload, "node_image_ids", lambda node: {})

    def load_lacking(nodes: list[str], images: list[str], say: object, wanted: object) -> list[str]:
        events.append("load")
        return []

    monkeypatch.setattr(preload, "load_lacking", load_lacking)
    checks = iter([False, False, True])

    def ready(node: str) -> None:
        events.append("ready?")
        if not next(checks):
            raise CommandError(["systemctl"], 3, "", "inactive")

    Preloader(nodes=lambda: ["n1"], count=1, images=["kserve/x:v1"], say=print, ready=ready).start().finish()
    assert events == ["ready?", "ready?", "ready?", "load"]
