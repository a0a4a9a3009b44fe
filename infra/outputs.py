"""Stack outputs: how to reach Kubeflow and who can log in (kubeconfig secret, no passwords).

They are the smoke suite's input, in the shape its contract states (`smoke_tests.contract`, a
versioned JSON Schema); `contractVersion` says which version of it they satisfy.
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra.config import StackConfig
from infra.gateway.standin import ingress
from infra.manifests.objects import Rendered
from infra.versions import load_versions
from smoke_tests.contract import CONTRACT_VERSION

# kfp 2.15's default image for Python components (kfp.dsl.component_factory).
KFP_COMPONENT_IMAGE = "python:3.11"


def connect_text(cfg: StackConfig) -> str:
    gw = ingress(cfg)
    return (
        f"kubectl --kubeconfig <(pulumi stack output kubeconfig --show-secrets -s {cfg.stack}) "
        f"port-forward -n {gw['namespace']} svc/{gw['service']} 8080:{gw['port']}\n"
        f"then open http://localhost:8080 and log in as one of the users; "
        f"smoke-test with: pytest smoke_tests --stack {cfg.stack}"
    )


def pipeline_image(cfg: StackConfig, rendered: Rendered) -> str | None:
    """The stack's own image for pipeline steps, where it maps kfp's default component image to one
    (`images.overrides`): by that mapping's contract it holds kfp and the sample steps' packages, so
    nothing is installed when a step runs. None: steps use kfp's default and install at run time."""
    if "pipelines" not in rendered.components:
        return None
    return cfg.images.overrides.get(KFP_COMPONENT_IMAGE)


def pipeline_packages(cfg: StackConfig) -> list[str]:
    """What the release's KServe sklearn server loads models with, so the sample pipelines' steps
    install the same (empty for a release versions.toml does not pin: the suite's default then)."""
    release = load_versions().releases.get(cfg.kubeflow.release)
    return list(release.sklearn_server_packages) if release else []


def stack_outputs(cfg: StackConfig, rendered: Rendered) -> dict[str, Any]:
    """Plain outputs (everything but the kubeconfig), pure so that tests can check them."""
    profile_of = {p.owner: p.name for p in cfg.profiles}
    return {
        "contractVersion": CONTRACT_VERSION,
        "ingress": ingress(cfg),
        "users": [{"email": u.email, "profile": profile_of.get(u.email)} for u in cfg.auth.users],
        "profiles": [p.name for p in cfg.profiles],
        "kubeflowVersion": cfg.kubeflow.release,
        "components": list(rendered.components),
        "clusterProvider": cfg.cluster.provider,
        "clusterName": cfg.cluster.name,
        "dexIssuer": cfg.auth.issuer,
        "objectCount": len(rendered.objects),
        "adjustments": list(rendered.adjustments),
        "connect": connect_text(cfg),
        "pipelineImage": pipeline_image(cfg, rendered),
        "pipelinePackages": pipeline_packages(cfg),
    }


def export_outputs(cfg: StackConfig, rendered: Rendered, kubeconfig: pulumi.Output[str]) -> None:
    pulumi.export("kubeconfig", pulumi.Output.secret(kubeconfig))
    for key, value in stack_outputs(cfg, rendered).items():
        pulumi.export(key, value)
