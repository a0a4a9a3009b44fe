"""kind's cluster config as kind v0.30.0 consumes it (issue 11, defect 1).

kind renders a kubeadm v1beta3 ClusterConfiguration for every Kubernetes version it supports and
applies each `kubeadmConfigPatches` entry to it as a JSON merge patch (RFC 7386). In v1beta3,
`apiServer.extraArgs` is a map of strings; a list there replaces kind's own arguments and
`kubeadm init` refuses the document. These tests apply the project's patch the way kind does and
check the result has the shape kubeadm v1beta3 decodes.
"""

from __future__ import annotations

from typing import Any

import yaml

from infra.clusters.kind import kind_config
from infra.config import KindClusterConfig, parse_stack_config
from tests.helpers import base_raw

# The part of kind v0.30.0's v1beta3 template that the patch meets (pkg/cluster/internal/kubeadm).
KIND_V1BETA3_CLUSTER_CONFIGURATION: dict[str, Any] = {
    "apiVersion": "kubeadm.k8s.io/v1beta3",
    "kind": "ClusterConfiguration",
    "apiServer": {"certSANs": ["localhost", "127.0.0.1"], "extraArgs": {"runtime-config": ""}},
    "controllerManager": {"extraArgs": {"enable-hostpath-provisioner": "true"}},
}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _config(**kind: Any) -> dict[str, Any]:
    """kind's config for a stack whose `cluster.kind` section is `kind` (camelCase keys, as in a
    stack file): through the config's parser and its defaults, as `pulumi up` builds it."""
    raw = base_raw(cluster={"provider": "kind", "name": "kubeflow", "kind": kind})
    cluster = parse_stack_config("t", raw, {"auth"}).cluster
    assert isinstance(cluster, KindClusterConfig)
    return kind_config(cluster.props())


def test_the_api_server_patch_merges_into_kinds_v1beta3_arguments() -> None:
    control = _config()["nodes"][0]
    (patch_text,) = control["kubeadmConfigPatches"]
    patch = yaml.safe_load(patch_text)
    assert patch["kind"] == "ClusterConfiguration"
    merged = merge_patch(KIND_V1BETA3_CLUSTER_CONFIGURATION, {k: v for k, v in patch.items() if k != "kind"})
    extra = merged["apiServer"]["extraArgs"]
    assert isinstance(extra, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items())
    assert extra == {"runtime-config": "",
                     "service-account-issuer": "https://kubernetes.default.svc",
                     "service-account-signing-key-file": "/etc/kubernetes/pki/sa.key"}


def test_configured_issuer_reaches_the_api_server_arguments() -> None:
    patch = yaml.safe_load(_config(serviceAccountIssuer="https://issuer.example")["nodes"][0]
                           ["kubeadmConfigPatches"][0])
    assert patch["apiServer"]["extraArgs"]["service-account-issuer"] == "https://issuer.example"


def test_every_node_runs_the_pinned_image_by_digest() -> None:
    config = _config(controlPlanes=1, workers=2)
    images = {n["image"] for n in config["nodes"]}
    assert images == {"kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a"}
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker", "worker"]
