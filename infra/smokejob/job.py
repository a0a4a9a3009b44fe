"""The in-cluster smoke Job: its objects, and the harness that runs it and collects its results.

The Job's pod reaches the gateway by its Service's cluster DNS name and Kubernetes through its own
ServiceAccount, bound to a ClusterRole that allows what the checks do (read the stack's workloads,
make and remove their own namespaces, InferenceServices, tokens) and nothing else. Passwords go in
a Secret, never in the Job's spec. Everything the harness makes carries the project's label and a
run id, and is removed afterwards (unless kept), the ClusterRole and its binding included.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smoke_tests.run import run
from smoke_tests.wait import WaitTimeout, wait_until

NAMESPACE = "kfstack-smoke-job"
NAME = "kfstack-smoke"
RUN_LABEL = "kubeflow-stacks/smoke-run"
LABELS = {"app.kubernetes.io/managed-by": "kubeflow-stacks", "app.kubernetes.io/name": NAME}
OUTPUTS_FILE = "/etc/kfstack-smoke/outputs.json"
JOB_POLL_S = 2  # how often the wait for the Job reads its state (two kubectl calls)

Obj = dict[str, Any]

RULES: list[Obj] = [
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch", "create", "delete"]},
    {"apiGroups": [""], "resources": ["pods", "pods/log", "services", "endpoints", "events", "configmaps",
                                      "persistentvolumeclaims", "resourcequotas", "serviceaccounts", "secrets"],
     "verbs": ["get", "list", "watch", "create", "delete"]},
    {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["admissionregistration.k8s.io"],
     "resources": ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"], "verbs": ["get", "list"]},
    {"apiGroups": ["kubeflow.org"], "resources": ["profiles", "poddefaults"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices", "inferenceservices/status"],
     "verbs": ["get", "list", "watch", "create", "delete", "patch"]},
    {"apiGroups": ["serving.kserve.io"], "resources": ["clusterservingruntimes"], "verbs": ["get", "list"]},
    {"apiGroups": ["security.istio.io"], "resources": ["authorizationpolicies"],
     "verbs": ["get", "list", "create", "delete"]},
    {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get", "list"]},
]


@dataclass(frozen=True)
class JobSpec:
    image: str
    outputs: Mapping[str, Any]  # the stack's outputs, without the kubeconfig
    environment: Mapping[str, str]  # secret: the users' passwords
    args: Sequence[str] = ()
    run_id: str = ""
    deadline_s: int = 3600


def gateway_url(outputs: Mapping[str, Any]) -> str:
    """The gateway's Service by its cluster DNS name (no port-forward inside the cluster)."""
    ingress = outputs["ingress"]
    return f"http://{ingress['service']}.{ingress['namespace']}.svc.cluster.local:{ingress['port']}"


def apply_text(objects: list[Obj]) -> str:
    """The objects as `kubectl apply -f -` reads them: one JSON document each. Not PyYAML's YAML 1.1,
    which leaves a string like the run id `5e123456` unquoted for kubectl's YAML to read as a number."""
    return "".join(f"---\n{json.dumps(o, sort_keys=True)}\n" for o in objects)


# The artifact store's pods (SeaweedFS since Kubeflow 1.10, MinIO before) and their namespace.
STORE_NAMESPACE = "kubeflow"
STORE_APPS = ["seaweedfs", "minio"]


def store_policy(labels: Mapping[str, str]) -> Obj:
    """Upstream's NetworkPolicy admits to the store only profile namespaces, kubeflow and Istio's: where
    NetworkPolicy is enforced, the Job's namespace reads it (with a profile's own key) only by this
    policy of its own, removed with the Job."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"{NAME}-store", "namespace": STORE_NAMESPACE, "labels": dict(labels)},
            "spec": {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": STORE_APPS}]},
                     "policyTypes": ["Ingress"], "ingress": [{"from": [
                         {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}}]}]}}


def job_objects(spec: JobSpec) -> list[Obj]:
    """Namespace, ServiceAccount, ClusterRole and binding, outputs ConfigMap, password Secret, the
    store's NetworkPolicy for the Job's namespace, Job."""
    labels = {**LABELS, RUN_LABEL: spec.run_id}
    meta = lambda name: {"name": name, "namespace": NAMESPACE, "labels": dict(labels)}  # noqa: E731
    cluster_name = f"{NAME}-{spec.run_id}"
    outputs = {k: v for k, v in spec.outputs.items() if k != "kubeconfig"}
    container = {
        "name": "suite", "image": spec.image, "imagePullPolicy": "IfNotPresent",
        "args": ["--stack-outputs", OUTPUTS_FILE, "--endpoint", gateway_url(outputs), *spec.args],
        "envFrom": [{"secretRef": {"name": NAME}}],
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "outputs", "mountPath": str(Path(OUTPUTS_FILE).parent), "readOnly": True}],
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": NAMESPACE, "labels": {**labels, "pod-security.kubernetes.io/enforce": "restricted"}}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(NAME)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": cluster_name, "labels": dict(labels)}, "rules": RULES},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": cluster_name, "labels": dict(labels)},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_name},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(NAME),
         "data": {Path(OUTPUTS_FILE).name: json.dumps(outputs, indent=2, sort_keys=True)}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": meta(NAME), "type": "Opaque",
         "stringData": dict(spec.environment)},
        store_policy(labels),
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(NAME), "spec": {
            "backoffLimit": 0, "activeDeadlineSeconds": spec.deadline_s,
            "template": {"metadata": {"labels": dict(labels)}, "spec": {
                "serviceAccountName": NAME, "restartPolicy": "Never", "containers": [container],
                "volumes": [{"name": "outputs", "configMap": {"name": NAME}}]}}}},
    ]


class SmokeJobError(RuntimeError):
    """The Job could not be run or its results not collected; the message says where it stopped."""


@dataclass
class JobResult:
    succeeded: bool
    log: str
    files: dict[str, bytes]


class SmokeJob:
    """Runs the suite's Job with `kubectl` against one kubeconfig; removes what it made."""

    def __init__(self, kubectl: Path, kubeconfig: Path, *, say: Callable[[str], None] = print) -> None:
        self.kubectl, self.kubeconfig, self.say = kubectl, kubeconfig, say

    def _kubectl(self, *args: str, stdin: str | None = None, timeout: float = 120, check: bool = True) -> str:
        return run([str(self.kubectl), "--kubeconfig", str(self.kubeconfig), *args], input_text=stdin,
                   timeout=timeout, check=check).stdout

    def existing_namespace_is_foreign(self) -> bool:
        """A namespace of the Job's name that the project did not make is never used or deleted."""
        out = self._kubectl("get", "namespace", NAMESPACE, "-o", "json", "--ignore-not-found")
        if not out.strip():
            return False
        labels = json.loads(out)["metadata"].get("labels") or {}
        return labels.get("app.kubernetes.io/managed-by") != LABELS["app.kubernetes.io/managed-by"]

    def run(self, spec: JobSpec, *, timeout: float, keep: bool = False) -> JobResult:
        from smoke_tests.incluster import RESULTS, unframe

        if self.existing_namespace_is_foreign():
            raise SmokeJobError(f"namespace {NAMESPACE} exists and was not made by kubeflow-stacks; "
                                "it is left alone: remove or rename it, then run again")
        spec = spec if spec.run_id else JobSpec(**{**spec.__dict__, "run_id": secrets.token_hex(4)})
        self.cleanup(wait=True)  # a previous run's leftovers (only the project's, by label)
        self.say(f"smoke job {spec.run_id}: applying {NAMESPACE}/{NAME} with image {spec.image}")
        self._kubectl("apply", "-f", "-", stdin=apply_text(job_objects(spec)))
        try:
            state = self._await_finish(timeout)
            log = self._kubectl("logs", "-n", NAMESPACE, f"job/{NAME}", "--tail", "-1", check=False, timeout=300)
            files = {name: data for name in RESULTS if (data := unframe(log, name)) is not None}
            self.say(f"smoke job {spec.run_id}: {state}; collected {', '.join(files) or 'no results'}")
            return JobResult(succeeded=state == "Complete", log=log, files=files)
        finally:
            if not keep:
                self.cleanup(wait=False)

    def _await_finish(self, timeout: float) -> str:
        """Wait for Complete or Failed, saying how it goes every half minute; a pod that cannot
        start (its image missing, say) stops the wait at once with the reason."""
        last_said = [time.monotonic()]

        def finished() -> tuple[bool, str]:
            job = json.loads(self._kubectl("get", "job", "-n", NAMESPACE, NAME, "-o", "json", check=False) or "{}")
            conditions = (job.get("status") or {}).get("conditions") or []
            done = [c["type"] for c in conditions if c["type"] in ("Complete", "Failed") and c["status"] == "True"]
            if done:
                return True, done[0]
            pods = json.loads(self._kubectl("get", "pods", "-n", NAMESPACE, "-l", f"job-name={NAME}", "-o", "json",
                                            check=False) or '{"items": []}')["items"]
            waiting = [cs["state"]["waiting"].get("reason", "") for pod in pods
                       for cs in (pod.get("status") or {}).get("containerStatuses") or []
                       if "waiting" in (cs.get("state") or {})]
            if time.monotonic() - last_said[0] > 30:
                last_said[0] = time.monotonic()
                self.say(f"  smoke job: running{' (' + ', '.join(waiting) + ')' if waiting else ''}")
            return False, ",".join(waiting) or "running"

        def stuck(observed: str) -> str | None:
            bad = [r for r in observed.split(",") if r in ("ErrImageNeverPull", "ImagePullBackOff", "ErrImagePull",
                                                           "CreateContainerConfigError", "InvalidImageName")]
            return f"the suite's pod cannot start: {bad[0]}" if bad else None

        try:
            return wait_until(finished, timeout=timeout, interval=JOB_POLL_S, what="the smoke Job to finish",
                              fail_if=stuck)
        except WaitTimeout as exc:
            raise SmokeJobError(f"the smoke Job did not finish ({exc}); "
                                f"`kubectl logs -n {NAMESPACE} job/{NAME}` shows how far it got") from None

    def cleanup(self, *, wait: bool) -> None:
        """Delete the project's Job objects: by label, so nothing of another's is touched."""
        selector = f"app.kubernetes.io/managed-by={LABELS['app.kubernetes.io/managed-by']}," \
                   f"app.kubernetes.io/name={NAME}"
        self._kubectl("delete", "clusterrolebinding,clusterrole", "-l", selector, "--ignore-not-found",
                      "--wait=false", check=False)
        self._kubectl("delete", "networkpolicy", "-n", STORE_NAMESPACE, "-l", selector, "--ignore-not-found",
                      "--wait=false", check=False)
        if not self.existing_namespace_is_foreign():
            self._kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", f"--wait={str(wait).lower()}",
                          timeout=300, check=False)


def write_results(result: JobResult, report_dir: Path) -> list[Path]:
    """The collected files and the whole log into the report directory."""
    report_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in result.files.items():
        (report_dir / name).write_bytes(data)
        written.append(report_dir / name)
    (report_dir / "smoke-job.log").write_text(result.log, encoding="utf-8")
    return [*written, report_dir / "smoke-job.log"]
