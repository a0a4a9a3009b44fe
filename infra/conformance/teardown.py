"""What a teardown must leave: no cluster the stack made, or, on a cluster the stack does not own,
none of its namespaces, webhook configurations, CRDs or other cluster-scoped objects.

The list of what to look for is taken from the stack's state before `pulumi destroy` runs (what
Pulumi created), plus the profile namespaces that Kubeflow's profile controller made for the
stack's profiles; after the destroy each is looked up on the cluster. `step` is the run's teardown
and its verification, as two recorded steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import LOCAL_PROVIDERS, ExistingClusterConfig, cluster_config
from infra.conformance.objects import GONE_TIMEOUT_S, ObjectRef, objects_left, objects_to_check
from infra.conformance.session import Run, line_logger

# Cluster lifecycles the project owns: `pulumi destroy` deletes the cluster itself.
OWNED_CLUSTERS = LOCAL_PROVIDERS


@dataclass
class TeardownPlan:
    """Taken before the destroy: which cluster, and which objects."""

    provider: str
    cluster_name: str
    kubeconfig: str | None
    objects: list[ObjectRef] = field(default_factory=list)


def plan_from_state(deployment: dict[str, Any], config: dict[str, Any], outputs: dict[str, Any]) -> TeardownPlan:
    """A plan from `pulumi stack export`'s deployment, the stack's config and its outputs (the
    cluster section read by the config's model, its defaults included)."""
    cluster = cluster_config(config.get("cluster"))
    profiles = [p for p in outputs.get("profiles") or [] if isinstance(p, str)]
    kubeconfig = outputs.get("kubeconfig")
    if not kubeconfig and isinstance(cluster, ExistingClusterConfig):
        # An up that failed before its outputs: the existing cluster's own kubeconfig file.
        path = Path(cluster.existing.kubeconfig).expanduser()
        kubeconfig = path.read_text(encoding="utf-8") if path.is_file() else None
    return TeardownPlan(provider=cluster.provider, cluster_name=cluster.name,
                        kubeconfig=kubeconfig, objects=objects_to_check(deployment.get("resources") or [], profiles))


def cluster_still_there(provider: str, name: str) -> bool:
    """Whether the cluster a stack owned still exists (sim: its KWOK workdir or kwokctl's list)."""
    from infra.clusters.kind import KindClusterProvider
    from infra.clusters.minikube import MinikubeClusterProvider
    from infra.clusters.sim import SimClusterProvider, sim_workdir

    if provider == "sim":
        return sim_workdir(name).exists() or SimClusterProvider().cluster_exists({"name": name})
    if provider == "kind":
        return KindClusterProvider().cluster_exists({"name": name})
    if provider == "minikube":
        return MinikubeClusterProvider().cluster_exists({"name": name})
    raise ValueError(f"no cluster check for provider {provider!r}")


def verify_teardown(plan: TeardownPlan, timeout: float = GONE_TIMEOUT_S) -> list[str]:
    """What the teardown left behind (empty when it left nothing)."""
    if plan.provider in OWNED_CLUSTERS:
        return [f"{plan.provider} cluster {plan.cluster_name}"] if cluster_still_there(
            plan.provider, plan.cluster_name) else []
    if not plan.kubeconfig:
        return []  # a managed cluster deleted by the destroy, or nothing was ever created
    return objects_left(plan.kubeconfig, plan.objects, timeout)


def step(run: Run, label: str) -> None:
    """`pulumi destroy` (recorded as `teardown`), then what it left (`teardown-verification`)."""
    assert run.stack is not None
    plan = None
    with run.step(label, record_as="teardown"):
        plan = plan_from_state(dict(run.stack.export_stack().deployment or {}), run.config, run.outputs())
        run.stack.destroy(parallel=run.opts.parallel, color="never", show_secrets=False,
                          on_output=line_logger(run.logs / f"{label}.log"))
    with run.step(f"{label}-verification", record_as="teardown-verification") as check:
        if plan is None:
            raise RuntimeError("nothing to verify: the state could not be read before the destroy")
        left = verify_teardown(plan)
        state_left = [r.get("urn", "") for r in run.resources() if r.get("type") != "pulumi:pulumi:Stack"]
        left += [f"in the state: {u}" for u in state_left]
        run.record.teardown_left += left
        check.detail = f"checked {len(plan.objects)} object(s) and the {plan.provider} cluster {plan.cluster_name}"
        if left:
            raise RuntimeError(f"the teardown left {len(left)} thing(s) behind: " + "; ".join(left[:50]))
