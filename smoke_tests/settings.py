"""The smoke suite's options: each has an environment variable, and the command line wins.

Kept free of heavy imports: the plugin loads this in every pytest run, including `pytest tests`.
Passwords are never options; they come from the stack's secrets, the environment or the local target.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGET_OPTIONS = ("stack", "kubeconfig", "endpoint", "local_target")
AUTH_FLOWS = ("oauth2-proxy", "authservice")
AUTH_TYPES = ("local", "ldap")
MNIST_SOURCES = ("auto", "mnist", "digits")


@dataclass(frozen=True)
class Option:
    flag: str
    env: str
    help: str
    default: Any = None
    kind: str = "str"  # str | path | float | flag
    choices: tuple[str, ...] | None = None
    shared: bool = False  # also defined by pytest-kind; its definition is used when it is loaded

    @property
    def dest(self) -> str:
        name = self.flag.lstrip("-").replace("-", "_")
        return name if self.shared else "kf_" + name

    @property
    def field(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option("--stack", "KFSTACK_STACK", "Pulumi stack to test; its outputs give kubeconfig, gateway and users"),
    Option("--stack-outputs", "KFSTACK_STACK_OUTPUTS", "a stack's outputs as JSON (`pulumi stack output "
           "--json`), where Pulumi is not at hand (the in-cluster Job); its kubeconfig, if any, or --kubeconfig",
           kind="path"),
    Option("--kubeconfig", "KFSTACK_KUBECONFIG", "kubeconfig of a cluster not managed by Pulumi", kind="path",
           shared=True),
    Option("--context", "KFSTACK_CONTEXT", "kubeconfig context (with --kubeconfig)"),
    Option("--endpoint", "KFSTACK_ENDPOINT",
           "gateway URL that is already reachable (no port-forward), e.g. http://localhost:8080"),
    Option("--local-target", "KFSTACK_LOCAL_TARGET",
           "test the local conformance target (attach to `kfstack local up`, or start one)", kind="flag"),
    Option("--local-target-dir", "KFSTACK_LOCAL_TARGET_DIR", "working directory of the local target",
           kind="path"),
    Option("--users", "KFSTACK_USERS",
           "comma-separated user e-mails when there are no stack outputs (default user@example.com); "
           "passwords from KFSTACK_PASSWORD_<n> or KFSTACK_USER_PASSWORD"),
    Option("--ingress", "KFSTACK_INGRESS", "gateway Service to forward, NAMESPACE/SERVICE:PORT",
           default="istio-system/istio-ingressgateway:80"),
    Option("--auth-flow", "KFSTACK_AUTH_FLOW", "gateway auth front end: oauth2-proxy (Kubeflow 1.9+) or "
           "authservice (1.8 and earlier)", default="oauth2-proxy", choices=AUTH_FLOWS),
    Option("--auth-type", "KFSTACK_AUTH_TYPE", "Dex connector to log in with", default="local",
           choices=AUTH_TYPES),
    Option("--model-domain", "KFSTACK_MODEL_DOMAIN", "domain of InferenceService hosts "
           "(<name>.<namespace>.<domain>)", default="example.com"),
    Option("--mnist-source", "KFSTACK_MNIST_SOURCE", "MNIST dataset: mnist (download, live), digits "
           "(bundled, no network) or auto (digits at the local target)", default="auto",
           choices=MNIST_SOURCES),
    Option("--sklearn-requirement", "KFSTACK_SKLEARN_REQUIREMENT",
           "pip requirement for scikit-learn in pipeline steps (default: what the release's KServe sklearn "
           "server runs: the stack's pipelinePackages output, else Kubeflow v1.11.0's)"),
    Option("--keep", "KFSTACK_KEEP", "keep namespaces and resources the suite created (debugging)",
           kind="flag"),
    Option("--wait-timeout", "KFSTACK_WAIT_TIMEOUT", "seconds for ordinary waits", default=300.0,
           kind="float"),
    Option("--pipeline-timeout", "KFSTACK_PIPELINE_TIMEOUT", "seconds for a pipeline run", default=1200.0,
           kind="float"),
    Option("--inference-timeout", "KFSTACK_INFERENCE_TIMEOUT", "seconds for an InferenceService to be "
           "ready", default=900.0, kind="float"),
    Option("--smoke-report", "KFSTACK_SMOKE_REPORT", "Markdown summary to write", default="reports/smoke.md",
           kind="path"),
    Option("--diagnostics-dir", "KFSTACK_DIAGNOSTICS_DIR", "where the diagnostics bundle goes on failure",
           default="reports/diagnostics", kind="path"),
)


@dataclass(frozen=True)
class SmokeSettings:
    stack: str | None = None
    stack_outputs: Path | None = None
    kubeconfig: Path | None = None
    context: str | None = None
    endpoint: str | None = None
    local_target: bool = False
    local_target_dir: Path | None = None
    users: str | None = None
    ingress: str = "istio-system/istio-ingressgateway:80"
    auth_flow: str = "oauth2-proxy"
    auth_type: str = "local"
    model_domain: str = "example.com"
    mnist_source: str = "auto"
    sklearn_requirement: str | None = None
    keep: bool = False
    wait_timeout: float = 300.0
    pipeline_timeout: float = 1200.0
    inference_timeout: float = 900.0
    smoke_report: Path = Path("reports/smoke.md")
    diagnostics_dir: Path = Path("reports/diagnostics")

    @property
    def target_kind(self) -> str | None:
        if self.local_target:
            return "local"
        if self.stack or self.stack_outputs:
            return "stack"
        if self.kubeconfig:
            return "cluster"
        if self.endpoint:
            return "endpoint"
        return None

    def ingress_parts(self) -> tuple[str, str, int]:
        ns, _, rest = self.ingress.partition("/")
        svc, _, port = rest.partition(":")
        return ns, svc, int(port or 80)


def _convert(option: Option, value: Any) -> Any:
    if option.kind == "flag":
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
    if option.kind == "float":
        return float(value)
    if option.kind == "path":
        return Path(value).expanduser()
    return value


def resolve(cli: dict[str, Any], environ: dict[str, str] | None = None) -> SmokeSettings:
    """Command line first, then the environment, then the default."""
    environ = dict(os.environ) if environ is None else environ
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw = cli.get(option.dest)
        if raw is None or raw is False:
            raw = environ.get(option.env) or None
        if raw is None:
            raw = option.default
        if raw is not None:
            values[option.field] = _convert(option, raw)
    return SmokeSettings(**values)


def problems(settings: SmokeSettings, environ: dict[str, str] | None = None) -> list[str]:
    """Bad combinations, each naming the options (and environment variables) involved."""
    found = []
    chosen = [name for name, on in (("--stack", settings.stack), ("--stack-outputs", settings.stack_outputs),
                                    ("--local-target", settings.local_target)) if on]
    if settings.kubeconfig and (settings.stack or settings.local_target):
        chosen.append("--kubeconfig")
    if len(chosen) > 1:
        found.append(f"choose one target, not {' and '.join(chosen)}")
    if settings.local_target and settings.endpoint:
        found.append("--endpoint does not apply to --local-target (it has its own gateway)")
    if settings.context and not settings.kubeconfig:
        found.append("--context (KFSTACK_CONTEXT) needs --kubeconfig (KFSTACK_KUBECONFIG)")
    if settings.stack_outputs and not settings.stack_outputs.is_file():
        found.append(f"--stack-outputs {settings.stack_outputs}: no such file")
    if settings.kubeconfig and not settings.kubeconfig.is_file():
        found.append(f"--kubeconfig {settings.kubeconfig}: no such file")
    if settings.endpoint and not settings.endpoint.startswith(("http://", "https://")):
        found.append(f"--endpoint {settings.endpoint!r} must be an http(s) URL")
    ns, _, svc = settings.ingress.partition("/")
    if not ns or not svc:
        found.append(f"--ingress {settings.ingress!r} must be NAMESPACE/SERVICE:PORT")
    for name in ("wait_timeout", "pipeline_timeout", "inference_timeout"):
        if getattr(settings, name) <= 0:
            found.append(f"--{name.replace('_', '-')} must be positive")
    return found
