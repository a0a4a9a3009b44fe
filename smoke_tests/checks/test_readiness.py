"""Every Kubeflow workload ready, none crash-looping, every admission webhook served."""

from __future__ import annotations

from typing import Any

import pytest

from smoke_tests.kube import (
    KUBEFLOW_NAMESPACES,
    WorkloadState,
    crash_looping,
    existing_namespaces,
    webhooks_without_endpoints,
    workload_states,
)
from smoke_tests.settings import SmokeSettings
from smoke_tests.target import Target
from smoke_tests.wait import wait_until

pytestmark = pytest.mark.readiness


@pytest.fixture(scope="module")
def kubeflow_namespaces(kube_api: Any, kf_target: Target) -> list[str]:
    found = existing_namespaces(kube_api, [*KUBEFLOW_NAMESPACES, *(u.profile for u in kf_target.users)])
    assert "kubeflow" in found, f"namespace kubeflow missing; found {found}"
    return found


def test_every_workload_ready(kube_api: Any, kubeflow_namespaces: list[str], kf_settings: SmokeSettings) -> None:
    """Every Deployment and StatefulSet of Kubeflow's namespaces ready, and there are some: namespaces
    that hold no workload at all are not a ready Kubeflow (nor a check that looked at anything)."""
    def check() -> tuple[bool, list[str]]:
        states = workload_states(kube_api, kubeflow_namespaces)
        return bool(states) and all(s.ready for s in states), _not_ready(states)

    def crashing(_: list[str]) -> str | None:
        looping = crash_looping(kube_api, kubeflow_namespaces)
        return f"containers crash-looping: {looping}" if looping else None

    wait_until(check, timeout=kf_settings.wait_timeout, interval=5, fail_if=crashing,
               what=f"the Deployments and StatefulSets in {', '.join(kubeflow_namespaces)} to exist and be ready")
    assert workload_states(kube_api, ["kubeflow"]), "namespace kubeflow holds no Deployment or StatefulSet"


def _not_ready(states: list[WorkloadState]) -> list[str]:
    """What the wait reports when it gives up: each workload not ready, or that there is none."""
    return [str(s) for s in states if not s.ready] if states else ["no Deployment or StatefulSet at all"]


def test_nothing_crash_looping(kube_api: Any, kubeflow_namespaces: list[str]) -> None:
    assert crash_looping(kube_api, kubeflow_namespaces) == []


def test_every_webhook_has_endpoints(kube_api: Any, kf_settings: SmokeSettings) -> None:
    """Every Service an admission webhook calls has a ready endpoint. A cluster with no webhooks at all
    passes: a simulated stack's render drops them."""
    def check() -> tuple[bool, list[str]]:
        missing = webhooks_without_endpoints(kube_api)
        return not missing, missing

    wait_until(check, timeout=kf_settings.wait_timeout, interval=5,
               what="every admission webhook's Service to have a ready endpoint")
