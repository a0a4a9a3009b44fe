"""The critical path of a `pulumi up`: the chain of objects that decided when it ended.

The apply follows each object's own dependencies (infra/dependencies.py), so the update ends when
its latest object is done, and that object started when the last of what it needs was done. Walking
back from the latest object, each time to the dependency that finished last, gives the chain that
took the longest; every other chain had slack. Each link says how long its own step took and how
long it waited after its dependency (engine and provider overhead, or the program registering it).
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.apply import node_resource_name, type_token
from infra.bench.timeline import urn_type_and_name
from infra.dependencies import Graph

CLUSTER_NODE = "cluster"


@dataclass(frozen=True)
class Link:
    node: str  # a graph node (object key, CRDS, a served group, RBAC_SET, a gate) or CLUSTER_NODE
    started: float  # seconds since the update began
    finished: float

    @property
    def took(self) -> float:
        return round(self.finished - self.started, 2)


def step_of(node: str, graph: Graph, name: str = "kubeflow") -> tuple[str, str]:
    """The engine's (type, name) of a graph node, as infra/apply.py registers it under `name`."""
    if node in graph.objects:
        return (type_token(graph.objects[node]), node_resource_name(node, graph, name))
    return ("pulumi-python:dynamic:Resource", node_resource_name(node, graph, name))


def critical_path(graph: Graph, steps: dict[str, list[float]], cluster_ready: float | None = None) -> list[Link]:
    """The chain, first link first, from the engine's step times (URN -> [started, finished]).

    Nodes whose step has no finish (not run, or unchanged in a no-op) are left out; the chain
    starts at the cluster when `cluster_ready` (when the Kubernetes provider was ready) is given.
    """
    times = {urn_type_and_name(urn): span for urn, span in steps.items() if len(span) == 2}
    spans = {node: times[step_of(node, graph)] for node in graph.nodes() if step_of(node, graph) in times}
    if not spans:
        return []
    node: str | None = max(spans, key=lambda n: (spans[n][1], n))
    chain: list[Link] = []
    while node is not None:
        chain.append(Link(node, *spans[node]))
        deps = [d for d in graph.needs.get(node, {}) if d in spans]
        node = max(deps, key=lambda d: (spans[d][1], d)) if deps else None
    if cluster_ready is not None:
        chain.append(Link(CLUSTER_NODE, 0.0, cluster_ready))
    return chain[::-1]


def describe(chain: list[Link]) -> list[str]:
    """One line per link: when it started and finished, what it took, and its wait before."""
    lines = []
    before = None
    for link in chain:
        wait = f", waited {link.started - before:.1f}s after the one before" if before is not None else ""
        lines.append(f"{link.started:6.1f} -> {link.finished:6.1f}s  {link.took:5.1f}s  {link.node}{wait}")
        before = link.finished
    return lines
