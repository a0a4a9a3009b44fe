"""The deploy benchmark's bookkeeping (T0): the timeline that splits `pulumi up` into parts."""

from __future__ import annotations

from types import SimpleNamespace

from pulumi.automation import EngineEvent, ResourcePreEvent, ResOutputsEvent, StepEventMetadata

from infra.bench.command import record_timeline
from infra.bench.timeline import Timeline

STACK = "urn:pulumi:b-1::kubeflow-stacks"


def outputs_event(urn: str, type_: str) -> EngineEvent:
    meta = StepEventMetadata(op="create", urn=urn, type=type_, provider="")
    return EngineEvent(sequence=0, timestamp=0, res_outputs_event=ResOutputsEvent(metadata=meta))


def test_timeline_marks_cluster_and_phases_in_order_and_ignores_other_events(monkeypatch) -> None:
    clock = iter([0.0, 100.0, 101.0, 103.5, 105.0, 110.5, 125.0])  # creation, start(), then each event
    monkeypatch.setattr("infra.bench.timeline.time.monotonic", lambda: next(clock))
    timeline = Timeline()
    timeline.start()  # t0 = 100
    namespace = f"{STACK}::kubernetes:core/v1:Namespace::kubeflow"
    timeline(EngineEvent(sequence=0, timestamp=0, resource_pre_event=ResourcePreEvent(
        metadata=StepEventMetadata(op="create", urn=namespace, type="kubernetes:core/v1:Namespace", provider=""))))
    timeline(outputs_event(f"{STACK}::pulumi:providers:kubernetes::kf-k8s", "pulumi:providers:kubernetes"))
    timeline(outputs_event(namespace, "kubernetes:core/v1:Namespace"))
    timeline(outputs_event(f"{STACK}::pulumi-python:dynamic:Resource::kf-base",
                           "pulumi-python:dynamic:Resource"))
    timeline(SimpleNamespace(res_outputs_event=None))  # a diagnostic or summary event
    timeline(outputs_event(f"{STACK}::pulumi-python:dynamic:Resource::kf-resources",
                           "pulumi-python:dynamic:Resource"))

    assert timeline.marks == {"cluster": 3.5, "phase:base": 10.5, "phase:resources": 25.0}
    assert timeline.resources_done == 4
    assert timeline.steps[namespace] == [1.0, 5.0]
    assert timeline.phase_durations() == [("cluster", 3.5), ("phase:base", 7.0), ("phase:resources", 14.5)]

    results = {"pulumi-up": 30.0}
    record_timeline(timeline, results)
    assert results["pulumi-up-cluster"] == 3.5
    assert results["pulumi-up-kubeflow"] == 26.5
    assert results["pulumi-up-phases"] == {"cluster": 3.5, "phase:base": 7.0, "phase:resources": 14.5}


def test_a_kubernetes_object_named_like_a_phase_is_not_a_barrier() -> None:
    timeline = Timeline()
    config_map = "kubernetes:core/v1:ConfigMap"
    assert timeline.label_of(f"{STACK}::{config_map}::x-resources", config_map) is None
    assert timeline.label_of(f"{STACK}::pulumi-python:dynamic:Resource::kf-webhooks",
                             "pulumi-python:dynamic:Resource") == "phase:webhooks"
