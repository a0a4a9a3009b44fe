"""kind and minikube share what a cluster of container nodes does with `preloadImages`
(infra/clusters/local.py `ContainerNodesProvider`): a changed list is loaded into that provider's
own node containers, in place; an unchanged one loads nothing."""

from __future__ import annotations

from typing import Any

import pytest

from infra.clusters import kind, local, minikube


@pytest.mark.parametrize(("provider", "module", "lister"), [
    (kind.KindClusterProvider(), kind, "node_containers"),
    (minikube.MinikubeClusterProvider(), minikube, "profile_containers"),
], ids=["kind", "minikube"])
def test_a_changed_image_list_is_loaded_into_the_provider_s_own_nodes(
        provider: local.ContainerNodesProvider, module: Any, lister: str, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[tuple[list[str], list[str]]] = []
    monkeypatch.setattr(module, lister, lambda name: [f"{name}-node"])
    monkeypatch.setattr(local, "load_lacking", lambda nodes, images, say: loads.append((nodes, images)))
    old = {"name": "c1", "preloadImages": ["kfstack/a:v1"]}
    provider.update_cluster(old, dict(old))
    assert loads == []
    provider.update_cluster(old, {**old, "preloadImages": ["kfstack/a:v1", "kfstack/b:v2"]})
    assert loads == [(["c1-node"], ["kfstack/a:v1", "kfstack/b:v2"])]
    provider.update_cluster(old, {**old, "preloadImages": []})  # nothing to load
    assert len(loads) == 1
