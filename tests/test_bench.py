"""The deploy benchmark's bookkeeping (T0): the timeline that splits `pulumi up` into parts."""

from __future__ import annotations

from types import SimpleNamespace

from pulumi.automation import EngineEvent, OpType, ResourcePreEvent, ResOutputsEvent, StepEventMetadata

from infra.bench.available import all_available_at, expected_deployments
from infra.bench.deploy import record_timeline
from infra.bench.timeline import Timeline

STACK = "urn:pulumi:b-1::kubeflow-stacks"


def outputs_event(urn: str, type_: str) -> EngineEvent:
    meta = StepEventMetadata(op=OpType.CREATE, urn=urn, type=type_, provider="")
    return EngineEvent(sequence=0, timestamp=0, res_outputs_event=ResOutputsEvent(metadata=meta))


def test_timeline_marks_the_cluster_and_when_each_part_was_done(monkeypatch) -> None:
    clock = iter([0.0, 100.0, 101.0, 103.5, 105.0, 108.0, 110.5, 125.0])  # creation, start(), then each event
    monkeypatch.setattr("infra.bench.timeline.time.monotonic", lambda: next(clock))
    timeline = Timeline()
    timeline.start()  # t0 = 100
    namespace = f"{STACK}::kubernetes:core/v1:Namespace::kubeflow"
    timeline(EngineEvent(sequence=0, timestamp=0, resource_pre_event=ResourcePreEvent(
        metadata=StepEventMetadata(op=OpType.CREATE, urn=namespace, type="kubernetes:core/v1:Namespace", provider=""))))
    timeline(outputs_event(f"{STACK}::pulumi:providers:kubernetes::kf-k8s", "pulumi:providers:kubernetes"))
    timeline(outputs_event(namespace, "kubernetes:core/v1:Namespace"))
    timeline(outputs_event(f"{STACK}::kubernetes:core/v1:Namespace::auth", "kubernetes:core/v1:Namespace"))
    timeline(outputs_event(f"{STACK}::pulumi-python:dynamic:Resource::kf-crds", "pulumi-python:dynamic:Resource"))
    timeline(SimpleNamespace(res_outputs_event=None))  # a diagnostic or summary event
    timeline(outputs_event(f"{STACK}::kubernetes:kubeflow.org/v1:Profile::alice", "kubernetes:kubeflow.org/v1:Profile"))

    # A part is marked when its last step is done; the parts overlap, so a part done before the
    # latest mark of the parts before it counts 0 s.
    assert timeline.marks == {"cluster": 3.5, "phase:base": 8.0, "phase:foundation": 10.5, "phase:resources": 25.0}
    assert timeline.resources_done == 5
    assert timeline.steps[namespace] == [1.0, 5.0]
    assert timeline.phase_durations() == [("cluster", 3.5), ("phase:base", 4.5), ("phase:foundation", 2.5),
                                          ("phase:resources", 14.5)]
    timeline.marks["phase:foundation"] = 7.0
    assert timeline.phase_durations()[2] == ("phase:foundation", 0.0)
    timeline.marks["phase:foundation"] = 10.5

    results = {"pulumi-up": 30.0}
    record_timeline(timeline, results)
    assert results["pulumi-up-cluster"] == 3.5
    assert results["pulumi-up-kubeflow"] == 26.5
    assert results["pulumi-up-phases"] == {"cluster": 3.5, "phase:base": 4.5, "phase:foundation": 2.5,
                                           "phase:resources": 14.5}


def test_steps_are_labelled_by_the_part_of_the_release_they_belong_to() -> None:
    timeline = Timeline()
    config_map = "kubernetes:core/v1:ConfigMap"
    assert timeline.label_of(f"{STACK}::{config_map}::kubeflow/x-resources", config_map) == "phase:foundation"
    assert timeline.label_of(f"{STACK}::pulumi-python:dynamic:Resource::kf-admission-kubeflow-kserve",
                             "pulumi-python:dynamic:Resource") == "phase:webhooks"
    assert timeline.label_of(f"{STACK}::pulumi:providers:kubernetes::k8s", "pulumi:providers:kubernetes") == "cluster"
    assert timeline.label_of(f"{STACK}::pulumi-python:dynamic:Resource::kfs-kwok",
                             "pulumi-python:dynamic:Resource") is None


def test_critical_path_walks_back_from_the_latest_step_through_the_dependency_done_last() -> None:
    from infra.bench.critical import CLUSTER_NODE, critical_path, describe
    from infra.dependencies import derive

    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kf"}}
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "ctl", "namespace": "kf"}}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "kf"}}
    pod = {"metadata": {"labels": {"app": "ctl"}}, "spec": {
        "serviceAccountName": "ctl", "containers": [{"name": "c", "image": "i"}],
        "volumes": [{"name": "v", "configMap": {"name": "cfg"}}]}}
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ctl", "namespace": "kf"},
              "spec": {"selector": {"matchLabels": {"app": "ctl"}}, "template": pod}}
    graph = derive([ns, account, config, deploy])
    urn = f"{STACK}::kubeflow-stacks:kubeflow:KubeflowDeployment$"
    steps = {f"{urn}kubernetes:core/v1:Namespace::kf": [3.0, 3.5],
             f"{urn}kubernetes:core/v1:ServiceAccount::kf/ctl": [3.6, 3.8],
             f"{urn}kubernetes:core/v1:ConfigMap::kf/cfg": [3.6, 4.9],  # done last of the Deployment's needs
             f"{urn}kubernetes:apps/v1:Deployment::kf/ctl": [5.0, 12.0],
             f"{STACK}::pulumi:pulumi:Stack::s": [0.0]}  # began, never finished: left out
    chain = critical_path(graph, steps, cluster_ready=2.5)
    assert [(link.node, link.started, link.finished) for link in chain] == [
        (CLUSTER_NODE, 0.0, 2.5), ("core/Namespace:kf", 3.0, 3.5), ("core/ConfigMap:kf/cfg", 3.6, 4.9),
        ("apps/Deployment:kf/ctl", 5.0, 12.0)]
    assert chain[-1].took == 7.0
    lines = describe(chain)
    assert lines[-1].endswith("apps/Deployment:kf/ctl, waited 0.1s after the one before")
    assert critical_path(graph, {}) == []


def test_critical_path_through_a_served_api_group_to_the_crd_resource() -> None:
    from infra.bench.critical import critical_path
    from infra.dependencies import CRDS, derive, served_node

    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.org"},
           "spec": {"group": "example.org", "scope": "Namespaced", "names": {"kind": "Widget", "plural": "widgets"},
                    "versions": [{"name": "v1", "served": True, "storage": True}]}}
    widget = {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "kf"}}
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kf"}}
    graph = derive([crd, ns, widget])
    parent = f"{STACK}::kubeflow-stacks:kubeflow:KubeflowDeployment$"
    steps = {f"{parent}pulumi-python:dynamic:Resource::kubeflow-crds": [1.0, 4.0],
             f"{parent}pulumi-python:dynamic:Resource::kubeflow-crds-example.org": [4.1, 6.0],
             f"{parent}kubernetes:core/v1:Namespace::kf": [1.0, 1.2],
             f"{parent}kubernetes:example.org/v1:Widget::kf/w": [6.1, 6.3]}
    chain = critical_path(graph, steps)
    assert [link.node for link in chain] == [CRDS, served_node("example.org"), "example.org/Widget:kf/w"]


def test_verdicts_hold_each_run_to_the_issue_goals() -> None:
    from infra.bench.deploy import verdicts

    met = verdicts({"pulumi-up-kubeflow": 14.0, "upstream-single-pass": 20.0, "pulumi-up-noop": 5.0})
    assert met[0].endswith("14.0s / 20.0s = 0.70x (goal <= 0.7x: met)")
    assert met[1] == "(c) no-op pulumi up: 5.0s (goal <= 5s: met)"
    missed = verdicts({"pulumi-up-kubeflow": 14.2, "upstream-single-pass": 20.0, "pulumi-up-noop": 5.1})
    assert missed[0].endswith("= 0.71x (goal <= 0.7x: NOT met)")
    assert missed[1].endswith("(goal <= 5s: NOT met)")
    assert verdicts({"pulumi-up-kubeflow": 14.0}) == []  # upstream skipped: no ratio


def test_a_refused_first_pass_is_summed_up_by_kind() -> None:
    """What kubectl prints when custom resources go in before their CRDs are established."""
    from infra.bench.deploy import first_pass_failures

    stderr = "\n".join([
        'Warning: unrecognized format "int64"',
        'error: resource mapping not found for name: "selfsigned" namespace: "kubeflow" from "u.yaml": no matches '
        'for kind "Issuer" in version "cert-manager.io/v1"',
        "ensure CRDs are installed first",
        'error: resource mapping not found for name: "serving-cert" namespace: "kubeflow" from "u.yaml": no matches '
        'for kind "Certificate" in version "cert-manager.io/v1"',
        'error: resource mapping not found for name: "katib" namespace: "kubeflow" from "u.yaml": no matches '
        'for kind "Issuer" in version "cert-manager.io/v1"',
        'Error from server (InternalError): error when creating "u.yaml": Internal error occurred: timeout',
    ])
    refused = first_pass_failures(stderr)
    assert refused["objects"] == 4
    assert refused["kinds"] == {"Certificate": 1, "Issuer": 2, "other": 1}
    assert refused["first"][0].startswith("error: resource mapping not found")
    assert first_pass_failures("") == {"objects": 0, "kinds": {}, "first": []}


def test_the_watch_stamps_the_first_moment_every_deployment_is_available_at_once() -> None:
    expected = expected_deployments([
        {"kind": "Deployment", "metadata": {"namespace": "kubeflow", "name": "ml-pipeline"}},
        {"kind": "Deployment", "metadata": {"namespace": "auth", "name": "dex"}},
        {"kind": "Service", "metadata": {"namespace": "auth", "name": "dex"}}])
    assert expected == {"kubeflow/ml-pipeline", "auth/dex"}
    lines = [(1.0, "kubeflow   ml-pipeline   <none>\n"), (2.0, "auth   dex   False\n"),
             (3.0, "kubeflow   ml-pipeline   True\n"),
             (4.0, "kubeflow   ml-pipeline   False\n"),  # dropped back: not yet all at once
             (5.0, "auth   dex   True\n"), (6.0, "kubeflow   ml-pipeline   True\n"),
             (7.0, "auth   dex   True\n")]
    assert all_available_at(lines, expected) == 6.0
    assert all_available_at(lines[:5], expected) is None
    assert all_available_at([(1.0, "garbled\n"), *lines], expected) == 6.0
