"""The Pulumi program: validate config, render, provision the cluster, apply in order, export.

Everything that can fail on bad input (config, component names, claim names) fails before the
first resource is registered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi

from infra.config import CONFIG_KEYS, PROJECT, StackConfig, parse_stack_config

if TYPE_CHECKING:
    from infra.apply import KubeflowDeployment
    from infra.clusters import Cluster
    from infra.manifests.objects import Rendered



def read_stack_config() -> StackConfig:
    """Read this stack's config, including secret values (kept wrapped in `Secret`)."""
    from pulumi.runtime.config import get_config, get_config_env, is_config_secret

    raw: dict[str, Any] = {}
    secret_keys: set[str] = set()
    prefix = f"{PROJECT}:"
    names = {k[len(prefix):] for k in get_config_env() if k.startswith(prefix)} | set(CONFIG_KEYS)
    for key in sorted(names):
        value = get_config(prefix + key)
        if value is None:
            continue
        try:
            raw[key] = json.loads(value)
        except (TypeError, json.JSONDecodeError):
            raw[key] = value
        if is_config_secret(prefix + key):
            secret_keys.add(key)
    return parse_stack_config(pulumi.get_stack(), raw, secret_keys)


@dataclass
class StackResources:
    rendered: Rendered
    cluster: Cluster
    kubeflow: KubeflowDeployment


def build_stack(cfg: StackConfig, tree: Path) -> StackResources:
    """Render first (so bad input fails before any registration), then the cluster, then Kubeflow."""
    from infra.apply import KubeflowArgs, KubeflowDeployment
    from infra.clusters import provision_cluster
    from infra.clusters.late_images import workload_images
    from infra.manifests.render import render

    rendered = render(cfg, tree)
    pulumi.log.info(f"rendered {len(rendered.objects)} objects of Kubeflow {rendered.release} "
                    f"({len(rendered.components)} components; adjustments: {', '.join(rendered.adjustments)})")
    cluster = provision_cluster(cfg, workload_images=workload_images(rendered.objects))
    # No `depends_on=[cluster]` on the component: each object already waits for the cluster through
    # what it is applied with (the provider, which depends on the cluster; the CRD resource and the
    # admission gates, the kubeconfig). On the component it held every registration until the
    # component's own was answered, so the CRD resource, at the head of the critical path, reached
    # the engine behind some 80 objects whose checks went first (about 1 s on a 2-core machine).
    kubeflow = KubeflowDeployment(
        "kubeflow", KubeflowArgs(objects=rendered.objects, provider=cluster.k8s_provider,
                                 kubeconfig=cluster.kubeconfig, context=cluster.context,
                                 deleted_with=cluster.deleted_with))
    return StackResources(rendered, cluster, kubeflow)


def run_program() -> None:
    """The program's entry: the project's own errors become plain Pulumi errors (the keyed
    message, no traceback); anything else is a bug and keeps its traceback."""
    from infra.errors import UserError
    from infra.manifests.source import resolve_tree
    from infra.outputs import export_outputs
    from infra.sdk_logs import quiet_registration_debug_logs, skip_registration_stack_traces
    from infra.toolchain.model import ToolchainError

    quiet_registration_debug_logs()
    skip_registration_stack_traces()
    try:
        cfg = read_stack_config()
        tree = resolve_tree(cfg.kubeflow.release, cfg.kubeflow.manifests_path)
        stack = build_stack(cfg, tree)
    except (UserError, ToolchainError) as exc:
        raise pulumi.RunError(str(exc)) from None
    export_outputs(cfg, stack.rendered, stack.cluster.kubeconfig)
    for key, value in stack.cluster.outputs.items():
        pulumi.export(key, value)
