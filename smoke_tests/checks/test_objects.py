"""The objects a Kubeflow install must hold, read from the API server: each user's Profile with
that user as its owner, and the gateway Service the suite forwards to. No pod has to run, so this
also holds a simulated cluster to account."""

from __future__ import annotations

from typing import Any

import pytest

from smoke_tests.target import Target

pytestmark = pytest.mark.objects


def test_every_user_has_a_profile_they_own(kube_api: Any, kf_target: Target) -> None:
    from kubernetes import client

    custom = client.CustomObjectsApi(kube_api)
    found = {p["metadata"]["name"]: p["spec"].get("owner", {}).get("name")
             for p in custom.list_cluster_custom_object("kubeflow.org", "v1", "profiles")["items"]}
    wrong = {u.profile: found.get(u.profile, "(no such Profile)") for u in kf_target.users
             if found.get(u.profile) != u.email}
    assert wrong == {}, f"Profiles missing or owned by someone else: {wrong}; found {found}"


def test_gateway_service_exists(kube_api: Any, kf_target: Target) -> None:
    from kubernetes import client

    if kf_target.ingress is None:
        pytest.skip("NOT RUN: the target names no ingress gateway Service")
    namespace, name, port = kf_target.ingress
    service = client.CoreV1Api(kube_api).read_namespaced_service(name, namespace)
    assert port in [p.port for p in service.spec.ports or []], service.spec.ports
