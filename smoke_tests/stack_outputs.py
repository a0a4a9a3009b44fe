"""Reading a stack's outputs (the contract in `smoke_tests.contract`), checked when they are read."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smoke_tests.contract import ContractError, check
from smoke_tests.run import run
from smoke_tests.tools import find_tool


@dataclass(frozen=True)
class StackOutputs:
    kubeconfig: str
    ingress_namespace: str
    ingress_service: str
    ingress_port: int
    users: list[dict[str, str]]
    kubeflow_version: str | None
    components: tuple[str, ...]
    dex_issuer: str | None
    cluster_provider: str | None = None
    profiles: tuple[str, ...] = ()
    object_count: int | None = None
    ingress_kind: str = "istio"  # or "standin: ..." where nginx stands in for Istio's gateway
    pipeline_image: str | None = None  # the stack's own image for pipeline steps
    pipeline_packages: tuple[str, ...] = ()  # what the steps install (the release's model server's packages)

    @classmethod
    def parse(cls, data: dict[str, Any], source: str = "the stack outputs") -> StackOutputs:
        """The outputs, once they satisfy the contract (`ContractError` names each field that does not)."""
        if not data.get("ingress") and not data.get("users"):
            raise ValueError(f"{source} hold no ingress and no users; is the stack up (`pulumi up`)?")
        check(data, source)
        ingress = data["ingress"]
        return cls(kubeconfig=data.get("kubeconfig") or "", ingress_namespace=ingress["namespace"],
                   ingress_service=ingress["service"], ingress_port=int(ingress["port"]),
                   users=list(data["users"]), kubeflow_version=data.get("kubeflowVersion"),
                   components=tuple(data.get("components") or ()), dex_issuer=data.get("dexIssuer"),
                   cluster_provider=data.get("clusterProvider"), profiles=tuple(data.get("profiles") or ()),
                   object_count=data.get("objectCount"), ingress_kind=str(ingress.get("kind") or "istio"),
                   pipeline_image=data.get("pipelineImage") or None,
                   pipeline_packages=tuple(data.get("pipelinePackages") or ()))


def read_outputs_json(stack: str, *, cwd: Path | None = None, timeout: float = 120.0,
                      pulumi: str | None = None) -> dict[str, Any]:
    """`pulumi stack output --json --show-secrets` (the kubeconfig is a secret output)."""
    result = run([pulumi or find_tool("pulumi"), "stack", "output", "--json", "--show-secrets", "-s", stack],
                 timeout=timeout, cwd=cwd)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def read_stack_outputs(stack: str, *, cwd: Path | None = None, timeout: float = 120.0) -> StackOutputs:
    return StackOutputs.parse(read_outputs_json(stack, cwd=cwd, timeout=timeout), f"stack {stack}'s outputs")


def load_stack_outputs(path: Path) -> StackOutputs:
    """Outputs saved as JSON (the in-cluster Job mounts them without the kubeconfig)."""
    try:
        return StackOutputs.parse(json.loads(path.read_text(encoding="utf-8")), f"--stack-outputs {path}")
    except ContractError:
        raise
    except (OSError, ValueError) as exc:
        raise ValueError(f"--stack-outputs {path}: {exc}") from None


def write_kubeconfig(content: str, directory: Path) -> Path:
    """The stack's kubeconfig in a private file of the suite's own (never the user's current context)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "kubeconfig"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(content)
    return path
