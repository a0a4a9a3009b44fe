"""T0: the program does not make the Pulumi SDK send a debug message per registration (each a blocking
call on the program's event loop), nor a stack trace (captured twice, then stored in the state);
docs/benchmarks.md, the no-op profile."""

from __future__ import annotations

import logging

import pulumi
import pulumi.runtime.resource as registration
import pulumi.runtime.rpc_manager as rpc_manager
import pytest

from infra.apply import KubeObject
from infra.sdk_logs import SDK_DEBUG_VARIABLE, quiet_registration_debug_logs, skip_registration_stack_traces
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


@pytest.fixture
def sent_traces(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of stack frames each RegisterResource request carried, under mocks, with the
    SDK's stack capture as it ships (restored after the test)."""
    from pulumi.runtime.mocks import MockMonitor

    monkeypatch.setattr(registration, "_get_stack_trace", ORIGINAL_STACK_TRACE)
    monkeypatch.delenv(SDK_DEBUG_VARIABLE, raising=False)
    frames: list[int] = []
    register = MockMonitor.RegisterResource

    def recording(self: MockMonitor, request: object) -> object:
        if request.type != "pulumi:pulumi:Stack":  # type: ignore[attr-defined]
            frames.append(len(request.stackTrace.frames))  # type: ignore[attr-defined]
        return register(self, request)

    monkeypatch.setattr(MockMonitor, "RegisterResource", recording)
    pulumi.runtime.set_mocks(RecordingMocks(), project="kubeflow-stacks", stack="test", preview=False)
    return frames


ORIGINAL_STACK_TRACE = registration._get_stack_trace


def test_the_sdk_sends_a_stack_trace_per_registration_by_default(sent_traces: list[int]) -> None:
    in_pulumi(lambda: KubeObject("kubeflow/c", CONFIG_MAP))
    assert sent_traces and all(n > 0 for n in sent_traces)


def test_registrations_go_without_a_stack_trace_once_skipped(sent_traces: list[int]) -> None:
    skip_registration_stack_traces()
    in_pulumi(lambda: KubeObject("kubeflow/c", CONFIG_MAP))
    assert sent_traces and all(n == 0 for n in sent_traces)


def test_the_variable_keeps_the_stack_traces(sent_traces: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SDK_DEBUG_VARIABLE, "1")
    skip_registration_stack_traces()
    in_pulumi(lambda: KubeObject("kubeflow/c", CONFIG_MAP))
    assert sent_traces and all(n > 0 for n in sent_traces)
