"""What the checks are run against: a gateway URL, users, and optionally a Kubernetes API.

A target also says which capabilities it lacks and why, so a check that needs one is reported as
NOT RUN with that reason instead of passing silently. The same checks run against a live stack
and the local conformance target; only this description differs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smoke_tests.profiles import profile_name_for
from smoke_tests.secret import Secret

# Capabilities a check may need.
KUBERNETES = "kubernetes-api"
KFP = "kfp-api"
ISVC = "inferenceservice-api"
ARTIFACTS = "artifact-store"
PORTFORWARD = "port-forward"
GATEWAY = "gateway"  # a gateway with running Dex, oauth2-proxy and apps behind it
STACK_OUTPUTS = "stack-outputs"

# What needs running pods: none of it answers on a simulated cluster.
NEEDS_PODS = (GATEWAY, PORTFORWARD, KFP, ISVC, ARTIFACTS)

NOT_RUN = "NOT RUN"


@dataclass(frozen=True)
class TargetUser:
    email: str
    profile: str
    password: Secret | None


@dataclass(frozen=True)
class KubeAccess:
    kubeconfig: Path
    context: str | None = None


@dataclass
class Target:
    kind: str  # local | stack | cluster | endpoint
    label: str
    gateway_url: str
    users: tuple[TargetUser, ...]
    model_domain: str = "example.com"
    auth_flow: str = "oauth2-proxy"
    connector: str = "local"
    kube: KubeAccess | None = None
    kubeflow_version: str | None = None
    kubernetes_version: str | None = None
    components: tuple[str, ...] = ()
    unavailable: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    local: Any = None  # smoke_tests.local.LocalState at the local target
    outputs: Any = None  # smoke_tests.stack_outputs.StackOutputs of a --stack target
    ingress: tuple[str, str, int] | None = None  # the gateway Service: namespace, name, port
    log_dirs: list[Path] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)

    def lacks(self, capability: str) -> str | None:
        return self.unavailable.get(capability)

    def local_store(self) -> dict[str, Any]:
        """The local target's artifact store record; NOT RUN for a target started before it had one."""
        store = getattr(self.local, "object_store", None) or {}
        if not store:
            import pytest

            pytest.skip(f"{NOT_RUN}: the running local target predates its artifact store; restart it "
                        "(`kfstack local down`, then `kfstack local up`)")
        return dict(store)

    def require(self, capability: str) -> None:
        """Skip the calling test as NOT RUN when this target cannot run it."""
        reason = self.lacks(capability)
        if reason:
            import pytest

            pytest.skip(f"{NOT_RUN}: {reason}")

    def gateway(self) -> str:
        """The gateway URL; NOT RUN where nothing answers behind it (a simulated cluster)."""
        self.require(GATEWAY)
        return self.gateway_url

    def user(self, index: int = 0) -> TargetUser:
        if index >= len(self.users):
            import pytest

            pytest.skip(f"{NOT_RUN}: the target lists {len(self.users)} user(s); this check needs "
                        f"{index + 1} (add users to the stack, or KFSTACK_USERS with their passwords)")
        return self.users[index]

    def model_host(self, name: str, namespace: str) -> str:
        """The Host an InferenceService answers to at the gateway (Knative's default domain template)."""
        return f"{name}.{namespace}.{self.model_domain}"

    def summary(self) -> dict[str, str]:
        info = {"target": self.label, "kind": self.kind, "gateway": self.gateway_url or "n/a",
                "Kubernetes": self.kubernetes_version or "n/a", "Kubeflow": self.kubeflow_version or "n/a",
                "auth flow": f"{self.auth_flow}, Dex connector {self.connector}"}
        if self.components:
            info["components"] = ", ".join(self.components)
        info.update(self.extra)
        return info


def password_for(index: int, environ: dict[str, str] | None = None) -> Secret | None:
    """KFSTACK_PASSWORD_<n> for user n, else KFSTACK_USER_PASSWORD; never a command-line value."""
    env = os.environ if environ is None else environ
    value = env.get(f"KFSTACK_PASSWORD_{index}") or env.get("KFSTACK_USER_PASSWORD")
    return Secret(value) if value else None


def users_from(entries: list[dict[str, str]], environ: dict[str, str] | None = None) -> tuple[TargetUser, ...]:
    return tuple(TargetUser(e["email"], e.get("profile") or profile_name_for(e["email"]),
                            password_for(i, environ)) for i, e in enumerate(entries))


def users_from_option(value: str | None, environ: dict[str, str] | None = None) -> tuple[TargetUser, ...]:
    emails = [e.strip() for e in (value or "user@example.com").split(",") if e.strip()]
    return users_from([{"email": e} for e in emails], environ)


LOCAL_UNAVAILABLE = {
    KUBERNETES: "the local target has no Kubernetes API (a live Kubeflow cannot run here); "
                "this is checked on live stacks",
    KFP: "the local target has no KFP API server; its sample pipelines ran with kfp.local when it "
         "started, and their exported models are the ones being served",
    ISVC: "the local target serves models with KServe ModelServer processes, not InferenceServices",
    PORTFORWARD: "the local target listens on 127.0.0.1 directly; there is nothing to port-forward",
    STACK_OUTPUTS: "the local target is not a Pulumi stack; there are no stack outputs",
}

def simulated_unavailable(stack: str, provider: str) -> dict[str, str]:
    """On a simulated cluster the API server is real but no pod runs: the checks that need one
    are NOT RUN, saying so; readiness, objects and outputs still run."""
    why = (f"stack {stack} runs on a simulated cluster (clusterProvider: {provider}): its pods are "
           "simulated and serve nothing")
    return {capability: why for capability in NEEDS_PODS}


SIMULATED_PROVIDERS = ("sim",)


def deployed_unavailable(stack: str, components: tuple[str, ...], ingress_kind: str) -> dict[str, str]:
    """What a stack cannot be checked for because its component selection leaves the part out
    (a stack on a machine where Envoy cannot run, say): NOT RUN, naming the missing component."""
    have = set(components)
    missing: dict[str, str] = {}

    def lacks(capability: str, needed: tuple[str, ...], what: str) -> None:
        absent = [c for c in needed if c not in have]
        if absent and capability not in missing:
            missing[capability] = (f"stack {stack} does not deploy {', '.join(absent)} ({what}); "
                                   "see its component selection")

    standin = ingress_kind.startswith("standin")
    if not standin:
        lacks(PORTFORWARD, ("istio",), "its ingress gateway, the port-forward's target")
    lacks(GATEWAY, ("dex", "oauth2-proxy") + (() if standin else ("istio",)),
          "the login path behind the gateway")
    lacks(ISVC, ("kserve",), "InferenceServices")
    lacks(KFP, ("pipelines",), "the Pipelines API")
    lacks(ARTIFACTS, ("pipelines",), "the pipeline artifact store")
    return missing

ENDPOINT_UNAVAILABLE = {
    KUBERNETES: "--endpoint without --kubeconfig gives no Kubernetes API",
    ARTIFACTS: "--endpoint without --kubeconfig gives no access to the artifact store",
    ISVC: "--endpoint without --kubeconfig cannot create InferenceServices",
    PORTFORWARD: "--endpoint is reached directly; no port-forward",
    STACK_OUTPUTS: "--endpoint is not a Pulumi stack; there are no stack outputs",
}
