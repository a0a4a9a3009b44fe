"""T0: the program does not make the Pulumi SDK send a debug message to the engine per registration
(each is a blocking call on the program's event loop; docs/benchmarks.md, the no-op profile)."""

from __future__ import annotations

import logging

import pulumi
import pulumi.runtime.resource as registration
import pulumi.runtime.rpc_manager as rpc_manager
import pytest

from infra.apply import KubeObject
from infra.sdk_logs import SDK_DEBUG_VARIABLE, quiet_registration_debug_logs
from tests.test_program_mocks import RecordingMocks, in_pulumi

CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "kubeflow"},
              "data": {"k": "v"}}


@pytest.fixture
def sdk_log(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The SDK's registration log as the SDK ships it (restored after the test), under mocks whose
    engine writes each Log request to Python logging."""
    monkeypatch.setattr(registration, "log", pulumi.log)
    monkeypatch.setattr(rpc_manager, "log", pulumi.log)
    monkeypatch.delenv(SDK_DEBUG_VARIABLE, raising=False)
    pulumi.runtime.set_mocks(RecordingMocks(), project="kubeflow-stacks", stack="test", preview=False)
    caplog.set_level(logging.DEBUG)
    return caplog


def _register_and_read(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Register one object; the debug messages the engine was sent."""
    caplog.clear()
    in_pulumi(lambda: KubeObject("kubeflow/c", CONFIG_MAP))
    return [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG and "resource" in r.getMessage()]


def test_the_sdk_sends_debug_messages_per_registration_by_default(sdk_log: pytest.LogCaptureFixture):
    # What the change removes, so the next test cannot pass vacuously (say, after an SDK upgrade).
    assert any(m.startswith("registering resource") for m in _register_and_read(sdk_log))


def test_quieted_registrations_send_no_debug_messages(sdk_log: pytest.LogCaptureFixture):
    quiet_registration_debug_logs()
    quiet_registration_debug_logs()  # idempotent
    assert _register_and_read(sdk_log) == []
    registration.log.warn("still sent")  # other severities still reach the engine
    assert any(r.levelno == logging.WARNING and r.getMessage() == "still sent" for r in sdk_log.records)


def test_the_variable_keeps_the_sdk_debug_messages(sdk_log: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(SDK_DEBUG_VARIABLE, "1")
    quiet_registration_debug_logs()
    assert any(m.startswith("registering resource") for m in _register_and_read(sdk_log))
