"""T2: the full release applies along its dependency graph in one `pulumi up`, without a single
retry or error, with the real Pulumi engine and Kubernetes provider against a real API server
(KWOK-simulated nodes).

pulumi-kubernetes retries a create that fails with NotFound (its namespace or its kind is not
there yet) and reports each attempt as "Retry #n; creation failed"; an object that misses what it
needs shows up here as such a retry, or as an error. And the engine's own events show that each
object's step started only after every object the graph says it needs was done.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from pulumi import automation as auto

from infra.apply import apply_graph
from infra.automation import temp_stack
from infra.bench.critical import step_of
from infra.bench.timeline import urn_type_and_name
from tests.helpers import ALICE, BOB, require_toolchain
from tests.test_sim_stack import expected_render, secret_paths, stack_raw

pytestmark = [pytest.mark.sim, pytest.mark.slow]


class EngineRecord:
    """Every diagnostic, and the sequence numbers at which each resource's step began and ended."""

    def __init__(self) -> None:
        self.diagnostics: list[tuple[str, str, str]] = []  # (severity, urn, message)
        self.began: dict[tuple[str, str], int] = {}  # (type, name) -> sequence
        self.ended: dict[tuple[str, str], int] = {}

    def __call__(self, event: auto.EngineEvent) -> None:
        if event.diagnostic_event is not None:
            diag = event.diagnostic_event
            self.diagnostics.append((diag.severity, diag.urn or "", diag.message.strip()))
        elif event.resource_pre_event is not None:
            self.began.setdefault(urn_type_and_name(event.resource_pre_event.metadata.urn), event.sequence)
        elif event.res_outputs_event is not None:
            self.ended[urn_type_and_name(event.res_outputs_event.metadata.urn)] = event.sequence

    def retries(self) -> list[str]:
        return [f"{urn}: {message}" for _, urn, message in self.diagnostics if "Retry #" in message]

    def errors(self) -> list[str]:
        return [f"{urn}: {message}" for severity, urn, message in self.diagnostics if severity == "error"]


def test_the_full_release_applies_in_one_up_without_a_retry_or_an_error(manifests_tree: Path,
                                                                          tmp_path: Path) -> None:
    require_toolchain("pulumi", "pulumi-resource-kubernetes", "kwokctl", "kwok", "kube-apiserver", "etcd",
                      "kustomize")
    ts = temp_stack(tmp_path, prefix="t2graph", env={"KFSTACK_MANIFESTS": str(manifests_tree)})
    cluster_name = f"kfg-{ts.name.split('-')[1]}"
    users = [ALICE, BOB]
    raw = stack_raw(cluster_name, users, "5Gi")
    ts.set_config(raw, secret_paths(users))
    graph = apply_graph(expected_render(raw, users, manifests_tree, ts.name).objects)
    record = EngineRecord()
    log = (ts.work_dir / "up.log").open("w")

    def write(line: str) -> None:
        log.write(line + "\n")
        log.flush()
    try:
        result = ts.stack.up(on_event=record, on_output=write)
        warnings = [f"{urn}: {message}" for severity, urn, message in record.diagnostics if severity == "warning"]
        print(f"\n{len(graph.nodes())} graph nodes, {graph.edge_count()} edges; "
              f"{len(record.ended)} resources done; {len(warnings)} warnings" + "".join(f"\n  {w}" for w in warnings))
        assert result.summary.result == "succeeded"
        assert record.retries() == []
        assert record.errors() == []
        # The engine ran each step only after what the graph says it needs was done.
        early = []
        for node, deps in graph.needs.items():
            began = record.began[step_of(node, graph)]
            early += [f"{node} began before {dep} was done" for dep in deps
                      if record.ended[step_of(dep, graph)] > began]
        assert early == []
        assert {step_of(node, graph) for node in graph.nodes()} <= set(record.ended)
    finally:
        log.close()
        with contextlib.suppress(auto.CommandError):
            ts.stack.destroy()
        from infra.clusters.sim import SimClusterProvider

        props = {"name": cluster_name}
        if SimClusterProvider().cluster_exists(props):
            SimClusterProvider().delete_cluster(props)
        ts.stack.workspace.remove_stack(ts.name, force=True)
