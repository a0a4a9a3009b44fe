"""The diagnostics bundle written when a check fails: what an engineer reads first, secrets redacted.

For a cluster: pod status, recent events and logs of unhealthy pods in Kubeflow's namespaces and
the user's, InferenceService and Argo Workflow status in the user's namespace. For the local
target: every component's log and generated config. Always: each failed check's message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from smoke_tests.redact import Redactor
from smoke_tests.target import Target

LOG_LINES = 400


def _write(path: Path, text: str, redact: Redactor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(redact(text), encoding="utf-8")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:120]


def write_bundle(directory: Path, target: Target | None, failures: Mapping[str, str]) -> Path:
    redact = Redactor(target.secrets if target else ())
    directory.mkdir(parents=True, exist_ok=True)
    for nodeid, text in failures.items():
        _write(directory / "failures" / f"{_safe(nodeid)}.txt", text, redact)
    if target is None:
        return directory
    for log_dir in target.log_dirs:
        for log in sorted(log_dir.glob("*.log")):
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_LINES:]
            _write(directory / "logs" / log.name, "\n".join(lines) + "\n", redact)
    if target.local is not None:
        config_dir = Path(target.local.workdir) / "config"
        for cfg in sorted(config_dir.glob("*")):
            _write(directory / "config" / cfg.name, cfg.read_text(encoding="utf-8"), redact)
    if target.kube is not None:
        try:
            _cluster(directory / "cluster", target, redact)
        except Exception as exc:
            _write(directory / "cluster" / "ERROR.txt", f"collecting cluster state failed: {exc!r}\n", redact)
    return directory


def _cluster(directory: Path, target: Target, redact: Redactor) -> None:
    from kubernetes import client

    from smoke_tests.kube import KUBEFLOW_NAMESPACES, api_client, existing_namespaces, pods_summary

    assert target.kube is not None
    api = api_client(target.kube)
    core = client.CoreV1Api(api)
    namespaces = existing_namespaces(api, [*KUBEFLOW_NAMESPACES, *(u.profile for u in target.users)])
    _write(directory / "pods.txt", "\n".join(line for ns in namespaces for line in pods_summary(api, ns)) + "\n",
           redact)
    events = []
    for ns in namespaces:
        for ev in core.list_namespaced_event(ns).items:
            when = ev.last_timestamp or ev.event_time or ev.metadata.creation_timestamp
            events.append((str(when), f"{when} {ns} {ev.type} {ev.reason} "
                                      f"{ev.involved_object.kind}/{ev.involved_object.name}: {ev.message}"))
    _write(directory / "events.txt", "\n".join(e for _, e in sorted(events)[-500:]) + "\n", redact)
    for ns in namespaces:
        for pod in core.list_namespaced_pod(ns).items:
            statuses = pod.status.container_statuses or []
            healthy = pod.status.phase in ("Running", "Succeeded") and all(
                s.ready or (s.state and s.state.terminated) for s in statuses)
            if healthy and all(s.restart_count == 0 for s in statuses):
                continue
            for status in statuses:
                for previous in (False, True):
                    try:
                        text = core.read_namespaced_pod_log(pod.metadata.name, ns, container=status.name,
                                                            tail_lines=LOG_LINES, previous=previous)
                    except client.ApiException:
                        continue
                    suffix = ".previous" if previous else ""
                    _write(directory / "logs" / f"{ns}_{pod.metadata.name}_{status.name}{suffix}.log", text,
                           redact)
    custom = client.CustomObjectsApi(api)
    for group, version, plural in (("serving.kserve.io", "v1beta1", "inferenceservices"),
                                   ("argoproj.io", "v1alpha1", "workflows")):
        for user in target.users:
            try:
                items: list[dict[str, Any]] = custom.list_namespaced_custom_object(
                    group, version, user.profile, plural)["items"]
            except client.ApiException as exc:
                items = [{"error": f"{exc.status} {exc.reason}"}]
            summary = [{"name": i.get("metadata", {}).get("name"), "status": i.get("status", i.get("error"))}
                       for i in items]
            _write(directory / f"{plural}-{user.profile}.yaml", yaml.safe_dump(summary, sort_keys=False), redact)
