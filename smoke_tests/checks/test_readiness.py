"""Every Kubeflow workload ready, none crash-looping, every admission webhook served."""

from __future__ import annotations

from typing import Any

import pytest

from infra.wait import wait_until
from smoke_tests.kube import (
    KUBEFLOW_NAMESPACES,
    crash_looping,
    existing_namespaces,
    webhooks_without_endpoints,
    workload_states,
)
from smoke_tests.settings import SmokeSettings
from smoke_tests.target import Target

pytestmark = pytest.mark.readiness


@pytest.fixture(scope="module")
def kubeflow_namespaces(kube_api: Any, kf_target: Target) -> list[str]:
    found = existing_namespaces(kube_api, [*KUBEFLOW_NAMESPACES, *(u.profile for u in kf_target.users)])
    assert "kubeflow" in found, f"namespace kubeflow missing; found {found}"
    return found


def test_every_workload_ready(kube_api: Any, kubeflow_namespaces: list[str], kf_settings: SmokeSettings) -> None:
    def check() -> tuple[bool, list[str]]:
        not_ready = [str(s) for s in workload_states(kube_api, kubeflow_namespaces) if not s.ready]
        return not not_ready, not_ready

    def crashing(_: list[str]) -> str | None:
        looping = crash_looping(kube_api, kubeflow_namespaces)
        return f"containers crash-looping: {looping}" if looping else None

    assert wait_until(check, timeout=kf_settings.wait_timeout, interval=5,
                      what="every Kubeflow Deployment and StatefulSet to be ready", fail_if=crashing) == []


def test_nothing_crash_looping(kube_api: Any, kubeflow_namespaces: list[str]) -> None:
    assert crash_looping(kube_api, kubeflow_namespaces) == []


def test_every_webhook_has_endpoints(kube_api: Any, kf_settings: SmokeSettings) -> None:
    def check() -> tuple[bool, list[str]]:
        missing = webhooks_without_endpoints(kube_api)
        return not missing, missing

    assert wait_until(check, timeout=kf_settings.wait_timeout, interval=5,
                      what="every admission webhook's Service to have a ready endpoint") == []
