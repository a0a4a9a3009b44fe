"""Kubernetes reads the checks need, as small functions over the official client.

Readiness follows the Deployment controller's own signals (observedGeneration caught up, ready
replicas equal to desired), crash-looping is read from container states, and a webhook counts as
served when its Service has a ready endpoint address.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from smoke_tests.target import KubeAccess

KUBEFLOW_NAMESPACES = ("kubeflow", "istio-system", "auth", "oauth2-proxy", "cert-manager",
                       "knative-serving", "knative-eventing", "kubeflow-system", "kfstack-gateway")
SECRET_KEYS = ("token", "client-key-data", "client-certificate-data", "password", "id-token",
               "refresh-token")


def api_client(kube: KubeAccess) -> Any:
    """An ApiClient for exactly this kubeconfig and context (never the user's current one)."""
    from kubernetes import config

    return config.new_client_from_config(config_file=str(kube.kubeconfig), context=kube.context)


def kubernetes_version(kube: KubeAccess) -> str | None:
    from kubernetes import client

    try:
        return str(client.VersionApi(api_client(kube)).get_code().git_version)
    except Exception:
        return None


def kubeconfig_secrets(text: str) -> list[str]:
    """Every credential in a kubeconfig, so reports can redact them."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in SECRET_KEYS and isinstance(value, str) and value:
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    with contextlib.suppress(yaml.YAMLError):
        walk(yaml.safe_load(text))
    return found


def existing_namespaces(api: Any, wanted: Iterable[str]) -> list[str]:
    from kubernetes import client

    present = {ns.metadata.name for ns in client.CoreV1Api(api).list_namespace().items}
    return [ns for ns in wanted if ns in present]


@dataclass(frozen=True)
class WorkloadState:
    kind: str
    namespace: str
    name: str
    ready: bool
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}: {self.detail}"


def workload_states(api: Any, namespaces: Iterable[str]) -> list[WorkloadState]:
    """Deployments and StatefulSets in the given namespaces, each judged ready or not."""
    from kubernetes import client

    apps = client.AppsV1Api(api)
    states = []
    for ns in namespaces:
        for d in apps.list_namespaced_deployment(ns).items:
            want = d.spec.replicas if d.spec.replicas is not None else 1
            ready = d.status.ready_replicas or 0
            caught_up = (d.status.observed_generation or 0) >= (d.metadata.generation or 0)
            states.append(WorkloadState("Deployment", ns, d.metadata.name, caught_up and ready == want,
                                        f"{ready}/{want} ready, generation observed: {caught_up}"))
        for s in apps.list_namespaced_stateful_set(ns).items:
            want = s.spec.replicas if s.spec.replicas is not None else 1
            ready = s.status.ready_replicas or 0
            states.append(WorkloadState("StatefulSet", ns, s.metadata.name, ready == want,
                                        f"{ready}/{want} ready"))
    return states


def crash_looping(api: Any, namespaces: Iterable[str]) -> list[str]:
    """Containers waiting in CrashLoopBackOff, as `namespace/pod/container (restarts)`."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    found = []
    for ns in namespaces:
        for pod in core.list_namespaced_pod(ns).items:
            for status in (pod.status.container_statuses or []) + (pod.status.init_container_statuses or []):
                waiting = status.state.waiting if status.state else None
                if waiting is not None and waiting.reason == "CrashLoopBackOff":
                    found.append(f"{ns}/{pod.metadata.name}/{status.name} ({status.restart_count} restarts)")
    return found


def webhooks_without_endpoints(api: Any) -> list[str]:
    """Admission webhooks whose Service has no ready address: every call to them would fail."""
    from kubernetes import client

    reg = client.AdmissionregistrationV1Api(api)
    core = client.CoreV1Api(api)
    services: dict[tuple[str, str], list[str]] = {}
    for kind, configs in (("validating", reg.list_validating_webhook_configuration().items),
                          ("mutating", reg.list_mutating_webhook_configuration().items)):
        for cfg in configs:
            for hook in cfg.webhooks or []:
                svc = hook.client_config.service
                if svc is not None:
                    services.setdefault((svc.namespace, svc.name), []).append(
                        f"{kind} {cfg.metadata.name}/{hook.name}")
    missing = []
    for (ns, name), hooks in sorted(services.items()):
        try:
            endpoints = core.read_namespaced_endpoints(name, ns)
            addresses = [a for s in endpoints.subsets or [] for a in s.addresses or []]
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            addresses = []
        if not addresses:
            missing.append(f"service {ns}/{name} has no ready endpoints (used by {', '.join(hooks)})")
    return missing


def service_account_token(api: Any, namespace: str, service_account: str, *,
                          audiences: list[str] | None = None, seconds: int = 3600) -> str:
    """A short-lived token for a ServiceAccount (TokenRequest), as `kubectl create token` makes."""
    from kubernetes import client

    spec = client.V1TokenRequestSpec(audiences=audiences or [], expiration_seconds=seconds)
    result = client.CoreV1Api(api).create_namespaced_service_account_token(
        service_account, namespace, client.AuthenticationV1TokenRequest(spec=spec))
    return str(result.status.token)


def pods_summary(api: Any, namespace: str, label_selector: str | None = None) -> list[str]:
    """One line per pod: phase and each container's state; the first thing to read on a failure."""
    from kubernetes import client

    lines = []
    for pod in client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=label_selector).items:
        states = []
        for status in pod.status.container_statuses or []:
            state = status.state
            if state and state.waiting:
                states.append(f"{status.name}=waiting({state.waiting.reason})")
            elif state and state.terminated:
                states.append(f"{status.name}=terminated({state.terminated.reason}, "
                              f"exit {state.terminated.exit_code})")
            else:
                states.append(f"{status.name}=running")
        lines.append(f"{namespace}/{pod.metadata.name}: {pod.status.phase} {' '.join(states)}")
    return lines


def failed_container_logs(api: Any, namespace: str, label_selector: str, *, lines: int = 15) -> list[str]:
    """The last `lines` of the log of each container that ended with an error, in the pods the
    selector finds: what a failed pipeline step printed before it stopped."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    found = []
    for pod in core.list_namespaced_pod(namespace, label_selector=label_selector).items:
        statuses = [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]
        for status in statuses:
            ended = status.state.terminated if status.state else None
            if ended is None or ended.exit_code == 0:
                continue
            try:
                text = core.read_namespaced_pod_log(pod.metadata.name, namespace, container=status.name,
                                                    tail_lines=lines, _preload_content=False).data.decode()
            except client.ApiException as exc:
                text = f"(log not readable: {exc.status} {exc.reason})"
            found.append(f"{pod.metadata.name}/{status.name} (exit {ended.exit_code}), last {lines} lines:\n"
                         + "\n".join(f"    {line}" for line in str(text).splitlines()[-lines:]))
    return found
