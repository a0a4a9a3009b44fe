"""The typed model of a stack: one place that knows every config key, its default and its checks.

Raw Pulumi config (a mapping of top-level keys to parsed JSON values) goes in, a frozen
`StackConfig` comes out, or a `ConfigError` that lists every problem at once, each naming the key,
the value and the fix. Nothing here touches Pulumi, so the render path and the tests use it as is.
Every name of an upstream object (components, claims) is checked against the release's component
map (infra/manifests/components.py, a leaf module) here, when the config is parsed; a release
without a hand-written map is checked with the same function once its map is derived from the tree.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from infra.errors import UserError
from infra.manifests.components import (
    ComponentMap,
    has_hand_written_map,
    load_component_map,
    requirement_problems,
    select_components,
    unknown_components,
)
from infra.versions import load_versions

PROJECT = "kubeflow-stacks"

# The upstream example's credentials. They are public, so only dev stacks may use them.
UPSTREAM_DEFAULT_PASSWORD = "12341234"
# SHA-256 of upstream's public example OIDC client secret: recognised and refused, never shipped.
UPSTREAM_CLIENT_SECRET_SHA256 = "462a0aa7e3ad7e72bcc06fd22a504044f4a4c79033231b9dc8900ad84fbe29b9"
UPSTREAM_DEFAULT_CLIENT_ID = "kubeflow-oidc-authservice"

# The top-level keys of a stack's config (`kubeflow-stacks:<key>`).
CONFIG_KEYS = ("devStack", "cluster", "kubeflow", "storage", "auth", "profiles", "images", "gateway")
CLUSTER_PROVIDERS = ("kind", "minikube", "existing", "sim", "eks", "gke", "aks")
LOCAL_PROVIDERS = ("kind", "minikube", "sim")
COMPONENT_SETS = ("full", "core")
# KServe's modes the manifests can be set to: Serverless (upstream Kubeflow's default: Knative and
# Istio) or RawDeployment (plain Deployments and Services, where Knative cannot run).
KSERVE_DEPLOYMENT_MODES = ("Serverless", "RawDeployment")
STORAGE_MODES = ("existing", "local-path", "nfs-subdir", "static")
CONNECTOR_TYPES = ("ldap", "github", "oidc")

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|Pi|M|G|T|P)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BCRYPT = re.compile(r"^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$")
_RELEASE = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+(-rc\.[0-9]+)?$")
_DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_MINIKUBE_SIZE = re.compile(r"^[0-9]+(\.[0-9]+)?([kmgt]b?|[KMGT]B?)?$")
_K8S_VERSION = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+$")
_MANAGED_K8S_VERSION = re.compile(r"^[0-9]+\.[0-9]+(\.[0-9]+)?$")
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_HOST = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$|^[0-9a-fA-F:]+$")
_REGISTRY = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]([-a-z0-9._/]*[a-z0-9])?)?/?$")
_IMAGE = re.compile(r"^[a-z0-9][-a-z0-9._:/]*[a-z0-9](:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
GATEWAY_KINDS = ("istio", "standin")
MINIKUBE_DRIVERS = ("docker", "podman", "kvm2", "qemu2", "virtualbox", "hyperkit", "vfkit", "hyperv", "none", "ssh")
# Shorter client secrets are guessable; upstream's example is 34 characters, `openssl rand -hex 16` 32.
MIN_CLIENT_SECRET = 16


class Secret:
    """A secret string: its repr and str never show the value, so it cannot leak into logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(****)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Problem:
    key: str
    value: Any
    fix: str

    def __str__(self) -> str:
        shown = "****" if isinstance(self.value, Secret) or self.value == "****" else repr(self.value)
        return f"{PROJECT}:{self.key} = {shown}: {self.fix}"


class ConfigError(UserError, ValueError):
    """Every problem found in a stack's config, reported together before anything is created."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack configuration ({len(problems)} problem(s)):\n{lines}")


# ---------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int
    listen_address: str = "127.0.0.1"


@dataclass(frozen=True)
class KindSettings:
    node_image: str
    control_planes: int = 1
    workers: int = 0
    service_account_issuer: str = "https://kubernetes.default.svc"
    service_account_signing_key_file: str = "/etc/kubernetes/pki/sa.key"
    extra_port_mappings: tuple[PortMapping, ...] = ()
    # Local images `kind load`ed into the nodes after create (images built here, no registry).
    preload_images: tuple[str, ...] = ()


@dataclass(frozen=True)
class MinikubeSettings:
    driver: str = "docker"
    cpus: int = 8
    memory: str = "16g"
    disk: str = "50g"
    kubernetes_version: str = "v1.34.2"


@dataclass(frozen=True)
class ExistingSettings:
    kubeconfig: str
    context: str | None = None


@dataclass(frozen=True)
class SimSettings:
    nodes: int = 1
    node_cpu: str = "16"
    node_memory: str = "64Gi"
    node_pods: int = 250


@dataclass(frozen=True)
class ManagedSettings:
    """A managed cloud cluster: enough of the shape that all three clouds share."""

    region: str
    kubernetes_version: str | None = None
    node_type: str | None = None
    nodes: int = 2
    min_nodes: int = 2
    max_nodes: int = 4
    project: str | None = None  # GKE only
    resource_group: str | None = None  # AKS only


@dataclass(frozen=True)
class ClusterConfig:
    provider: str
    name: str
    kind: KindSettings | None = None
    minikube: MinikubeSettings | None = None
    existing: ExistingSettings | None = None
    sim: SimSettings | None = None
    managed: ManagedSettings | None = None
    # Take over a running kind, minikube or sim cluster of this name (destroy then deletes it).
    adopt: bool = False


@dataclass(frozen=True)
class KubeflowConfig:
    release: str = "v1.11.0"
    manifests_path: str | None = None
    components: str = "full"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    # kubeflow.kserve.deploymentMode: None keeps upstream's inferenceservice-config as it is.
    kserve_deployment_mode: str | None = None


@dataclass(frozen=True)
class ClaimOverride:
    size: str | None = None
    storage_class: str | None = None


@dataclass(frozen=True)
class StorageConfig:
    mode: str = "existing"
    default_class: str = "standard"
    nfs_server: str | None = None
    nfs_path: str | None = None
    static_host_path: str = "/var/lib/kubeflow-stacks/volumes"
    claims: Mapping[str, ClaimOverride] = field(default_factory=dict)


@dataclass(frozen=True)
class DexUser:
    email: str
    username: str
    user_id: str
    password: Secret | None = None
    password_hash: Secret | None = None


@dataclass(frozen=True)
class AuthConfig:
    users: tuple[DexUser, ...]
    client_id: str
    client_secret: Secret
    cookie_secret: Secret
    issuer: str = "http://dex.auth.svc.cluster.local:5556/dex"
    redirect_uris: tuple[str, ...] = ("/oauth2/callback",)
    connectors: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Quota:
    cpu: str | None = None
    memory: str | None = None
    gpu: str | None = None
    pvcs: int | None = None
    storage: str | None = None


@dataclass(frozen=True)
class ProfileConfig:
    name: str
    owner: str
    owner_kind: str = "User"
    quota: Quota | None = None


@dataclass(frozen=True)
class ImagesConfig:
    """Where the stack's images come from: a registry that mirrors them all, exact overrides per
    upstream image, and the pull policy for every container (air-gapped installs,
    images built locally)."""

    registry: str | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)
    pull_policy: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.registry or self.overrides or self.pull_policy)


@dataclass(frozen=True)
class GatewayConfig:
    """What answers at the stack's front door: Istio's ingress gateway (upstream), or the project's
    nginx stand-in where Envoy cannot run (it routes /dex and /oauth2 and checks sessions with the
    real oauth2-proxy, as the local target's gateway does)."""

    kind: str = "istio"

    @property
    def standin(self) -> bool:
        return self.kind == "standin"


@dataclass(frozen=True)
class StackConfig:
    stack: str
    dev: bool
    cluster: ClusterConfig
    kubeflow: KubeflowConfig
    storage: StorageConfig
    auth: AuthConfig
    profiles: tuple[ProfileConfig, ...]
    images: ImagesConfig = field(default_factory=ImagesConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)


# ---------------------------------------------------------------------------------------------
# Parsing


class _Reader:
    """Reads typed values out of nested dicts and records problems instead of raising at once."""

    def __init__(self, secret_keys: frozenset[str]) -> None:
        self.problems: list[Problem] = []
        self.secret_keys = secret_keys

    def fail(self, key: str, value: Any, fix: str) -> None:
        self.problems.append(Problem(key, value, fix))

    def section(self, raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = raw.get(key, {})
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(key, value, "must be a map of settings")
            return {}
        return value

    def unknown(self, where: str, data: Mapping[str, Any], allowed: set[str]) -> None:
        for name in sorted(set(data) - allowed):
            self.fail(f"{where}.{name}" if where else name, data[name],
                      f"unknown setting; expected one of: {', '.join(sorted(allowed))}")

    def string(self, data: Mapping[str, Any], where: str, name: str, default: str | None = None,
               *, required: bool = False, choices: tuple[str, ...] | None = None) -> str | None:
        value = data.get(name, default)
        key = f"{where}.{name}"
        if value is None:
            if required:
                self.fail(key, None, "is required")
            return None
        if not isinstance(value, str):
            self.fail(key, value, "must be a string")
            return default
        if choices and value not in choices:
            self.fail(key, value, f"must be one of: {', '.join(choices)}")
            return default
        return value

    def integer(self, data: Mapping[str, Any], where: str, name: str, default: int,
                *, minimum: int = 0) -> int:
        value = data.get(name, default)
        key = f"{where}.{name}"
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            self.fail(key, value, f"must be a whole number of at least {minimum}")
            return default
        return value

    def matching(self, data: Mapping[str, Any], where: str, name: str, default: str | None,
                 pattern: re.Pattern[str], fix: str, *, required: bool = False) -> str | None:
        """A string that must match `pattern`; `fix` says what a good value looks like."""
        value = self.string(data, where, name, default, required=required)
        if value is not None and not pattern.match(value):
            self.fail(f"{where}.{name}", value, fix)
            return default
        return value

    def absolute_path(self, data: Mapping[str, Any], where: str, name: str, default: str | None,
                      *, required: bool = False) -> str | None:
        value = self.string(data, where, name, default, required=required)
        if value is not None and not value.startswith("/"):
            self.fail(f"{where}.{name}", value, "must be an absolute path (starting with /)")
            return default
        return value

    def boolean(self, data: Mapping[str, Any], where: str, name: str, default: bool) -> bool:
        """true/false, also as the strings `pulumi config set` stores without --path."""
        value = data.get(name, default)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            self.fail(f"{where}.{name}" if where else name, value, "must be true or false")
            return default
        return value

    def quantity(self, data: Mapping[str, Any], where: str, name: str) -> str | None:
        value = data.get(name)
        if value is None:
            return None
        value = str(value)
        if not _QUANTITY.match(value):
            self.fail(f"{where}.{name}", value,
                      "must be a Kubernetes quantity such as 10Gi, 500m or 4")
            return None
        return value

    def secret(self, data: Mapping[str, Any], top_key: str, where: str, name: str) -> Secret | None:
        """A value that must have been set with `pulumi config set --secret`."""
        value = data.get(name)
        if value is None:
            return None
        key = f"{where}.{name}"
        if not isinstance(value, str) or not value:
            self.fail(key, "****", "must be a non-empty string")
            return None
        if top_key not in self.secret_keys:
            self.fail(key, "****", f"is stored as plain text; set it as a secret with "
                      f"`pulumi config set --secret --path '{key}' <value>`")
        return Secret(value)


def _cluster(r: _Reader, raw: Mapping[str, Any]) -> ClusterConfig:
    data = r.section(raw, "cluster")
    provider = r.string(data, "cluster", "provider", "kind", choices=CLUSTER_PROVIDERS) or "kind"
    name = r.string(data, "cluster", "name", "kubeflow") or "kubeflow"
    if not _DNS_LABEL.match(name):
        r.fail("cluster.name", name, "must be a DNS label: lower-case letters, digits and '-'")
    r.unknown("cluster", data, {"provider", "name", "adopt", *CLUSTER_PROVIDERS})
    adopt = r.boolean(data, "cluster", "adopt", False)
    if adopt and provider not in LOCAL_PROVIDERS:
        r.fail("cluster.adopt", adopt, f"applies to clusters the stack creates ({', '.join(LOCAL_PROVIDERS)}); "
               "remove it (an existing cluster is never created or deleted)")
    sub = r.section(data, provider) if provider in data else {}
    where = f"cluster.{provider}"
    if provider == "kind":
        mappings = []
        for i, item in enumerate(sub.get("extraPortMappings", []) or []):
            if not isinstance(item, Mapping) or "containerPort" not in item or "hostPort" not in item:
                r.fail(f"{where}.extraPortMappings[{i}]", item, "needs containerPort and hostPort")
                continue
            key = f"{where}.extraPortMappings[{i}]"
            ports = [r.integer(item, key, p, 0, minimum=1) for p in ("containerPort", "hostPort")]
            if any(p > 65535 for p in ports):
                r.fail(key, item, "ports must be between 1 and 65535")
            address = str(item.get("listenAddress", "127.0.0.1"))
            if not _HOST.match(address):
                r.fail(f"{key}.listenAddress", address, "must be an IP address such as 127.0.0.1")
            r.unknown(key, item, {"containerPort", "hostPort", "listenAddress"})
            mappings.append(PortMapping(ports[0], ports[1], address))
        r.unknown(where, sub, {"nodeImage", "controlPlanes", "workers", "serviceAccountIssuer",
                               "serviceAccountSigningKeyFile", "extraPortMappings", "preloadImages"})
        preload = sub.get("preloadImages", []) or []
        if not isinstance(preload, list) or not all(isinstance(i, str) and ":" in i.rsplit("/", 1)[-1]
                                                    for i in preload):
            r.fail(f"{where}.preloadImages", preload, "must be a list of image references with tags, "
                   "such as ghcr.io/kubeflow/kubeflow/kfam:v1.10.0")
            preload = []
        kind = KindSettings(
            node_image=r.string(sub, where, "nodeImage", load_versions().kind_node_image) or "",
            control_planes=r.integer(sub, where, "controlPlanes", 1, minimum=1),
            workers=r.integer(sub, where, "workers", 0),
            service_account_issuer=r.matching(sub, where, "serviceAccountIssuer",
                                              KindSettings.service_account_issuer, _URL,
                                              "must be an https URL such as https://kubernetes.default.svc") or "",
            service_account_signing_key_file=r.absolute_path(
                sub, where, "serviceAccountSigningKeyFile",
                KindSettings.service_account_signing_key_file) or "",
            extra_port_mappings=tuple(mappings),
            preload_images=tuple(preload),
        )
        if "@sha256:" not in kind.node_image and ":" not in kind.node_image.rsplit("/", 1)[-1]:
            r.fail(f"{where}.nodeImage", kind.node_image,
                   "pin the node image with a tag (kindest/node:v1.34.0) or a digest")
        return ClusterConfig(provider, name, kind=kind, adopt=adopt)
    if provider == "minikube":
        r.unknown(where, sub, {"driver", "cpus", "memory", "disk", "kubernetesVersion"})
        return ClusterConfig(provider, name, adopt=adopt, minikube=MinikubeSettings(
            driver=r.string(sub, where, "driver", "docker", choices=MINIKUBE_DRIVERS) or "docker",
            cpus=r.integer(sub, where, "cpus", 8, minimum=2),
            memory=r.matching(sub, where, "memory", "16g", _MINIKUBE_SIZE,
                              "must be a size minikube reads, such as 16g or 16384mb") or "16g",
            disk=r.matching(sub, where, "disk", "50g", _MINIKUBE_SIZE, "must be a size such as 50g") or "50g",
            kubernetes_version=r.matching(sub, where, "kubernetesVersion", "v1.34.2", _K8S_VERSION,
                                          "must be a Kubernetes version such as v1.34.2") or "v1.34.2",
        ))
    if provider == "existing":
        r.unknown(where, sub, {"kubeconfig", "context"})
        kubeconfig = r.string(sub, where, "kubeconfig", required=True) or ""
        return ClusterConfig(provider, name, existing=ExistingSettings(
            kubeconfig=kubeconfig, context=r.string(sub, where, "context")))
    if provider == "sim":
        r.unknown(where, sub, {"nodes", "nodeCpu", "nodeMemory", "nodePods"})
        return ClusterConfig(provider, name, adopt=adopt, sim=SimSettings(
            nodes=r.integer(sub, where, "nodes", 1, minimum=1),
            node_cpu=r.quantity(sub, where, "nodeCpu") or SimSettings.node_cpu,
            node_memory=r.quantity(sub, where, "nodeMemory") or SimSettings.node_memory,
            node_pods=r.integer(sub, where, "nodePods", 250, minimum=10),
        ))
    # Managed clouds.
    r.unknown(where, sub, {"region", "kubernetesVersion", "nodeType", "nodes", "minNodes", "maxNodes",
                           "project", "resourceGroup"})
    managed = ManagedSettings(
        region=r.string(sub, where, "region", required=True) or "",
        kubernetes_version=r.matching(sub, where, "kubernetesVersion", None, _MANAGED_K8S_VERSION,
                                      "must be a version the cloud offers, such as 1.34"),
        node_type=r.string(sub, where, "nodeType"),
        nodes=r.integer(sub, where, "nodes", 2, minimum=1),
        min_nodes=r.integer(sub, where, "minNodes", 2, minimum=1),
        max_nodes=r.integer(sub, where, "maxNodes", 4, minimum=1),
        project=r.string(sub, where, "project", required=provider == "gke"),
        resource_group=r.string(sub, where, "resourceGroup"),
    )
    if managed.min_nodes > managed.max_nodes:
        r.fail(f"{where}.minNodes", managed.min_nodes, "must not exceed maxNodes")
    return ClusterConfig(provider, name, managed=managed)


def _kubeflow(r: _Reader, raw: Mapping[str, Any]) -> KubeflowConfig:
    data = r.section(raw, "kubeflow")
    r.unknown("kubeflow", data, {"release", "manifests", "components", "include", "exclude", "kserve"})
    kserve = data.get("kserve") or {}
    if not isinstance(kserve, Mapping):
        r.fail("kubeflow.kserve", kserve, "must be a map of settings, such as {deploymentMode: RawDeployment}")
        kserve = {}
    r.unknown("kubeflow.kserve", kserve, {"deploymentMode"})
    release = r.string(data, "kubeflow", "release", "v1.11.0") or "v1.11.0"
    if not _RELEASE.match(release):
        r.fail("kubeflow.release", release, "must be a release tag such as v1.11.0")
    lists = {}
    for name in ("include", "exclude"):
        value = data.get(name, []) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            r.fail(f"kubeflow.{name}", value, "must be a list of component names")
            value = []
        lists[name] = tuple(value)
    return KubeflowConfig(
        release=release,
        manifests_path=r.string(data, "kubeflow", "manifests"),
        components=r.string(data, "kubeflow", "components", "full", choices=COMPONENT_SETS) or "full",
        include=lists["include"],
        exclude=lists["exclude"],
        kserve_deployment_mode=r.string(kserve, "kubeflow.kserve", "deploymentMode",
                                        choices=KSERVE_DEPLOYMENT_MODES),
    )


def _storage(r: _Reader, raw: Mapping[str, Any]) -> StorageConfig:
    data = r.section(raw, "storage")
    r.unknown("storage", data, {"mode", "defaultClass", "nfs", "staticHostPath", "claims"})
    mode = r.string(data, "storage", "mode", "existing", choices=STORAGE_MODES) or "existing"
    nfs = r.section(data, "nfs") if "nfs" in data else {}
    server = r.matching(nfs, "storage.nfs", "server", None, _HOST, "must be a host name or IP address",
                        required=mode == "nfs-subdir")
    path = r.absolute_path(nfs, "storage.nfs", "path", None, required=mode == "nfs-subdir")
    default_class = r.string(data, "storage", "defaultClass", "standard") or "standard"
    if not _DNS_LABEL.match(default_class):
        r.fail("storage.defaultClass", default_class, "must be a DNS label")
    claims: dict[str, ClaimOverride] = {}
    raw_claims = data.get("claims", {}) or {}
    if not isinstance(raw_claims, Mapping):
        r.fail("storage.claims", raw_claims, "must map claim names to {size, storageClass}")
        raw_claims = {}
    for claim, spec in sorted(raw_claims.items()):
        where = f"storage.claims.{claim}"
        if not isinstance(spec, Mapping):
            r.fail(where, spec, "must be a map with size and/or storageClass")
            continue
        r.unknown(where, spec, {"size", "storageClass"})
        claims[claim] = ClaimOverride(size=r.quantity(spec, where, "size"),
                                      storage_class=r.matching(spec, where, "storageClass", None, _DNS_SUBDOMAIN,
                                                               "must be a StorageClass name (lower-case DNS name)"))
    return StorageConfig(mode=mode, default_class=default_class, nfs_server=server, nfs_path=path,
                         static_host_path=r.absolute_path(data, "storage", "staticHostPath",
                                                   StorageConfig.static_host_path) or "",
                         claims=claims)


def _auth(r: _Reader, raw: Mapping[str, Any], dev: bool, stack: str) -> AuthConfig:
    data = r.section(raw, "auth")
    r.unknown("auth", data, {"users", "oidcClient", "issuer", "connectors", "cookieSecret"})
    users: list[DexUser] = []
    raw_users = data.get("users")
    if raw_users is None:
        if dev:
            # The upstream example user, so `pulumi up -s dev` works with no secrets set.
            users.append(DexUser("user@example.com", "user", "15841185641784",
                                 password=Secret(UPSTREAM_DEFAULT_PASSWORD)))
        else:
            r.fail("auth.users", None, "list at least one user: `pulumi config set --path "
                   "'auth.users[0].email' you@example.com` and `pulumi config set --secret --path "
                   "'auth.users[0].password' <password>`")
        raw_users = []
    if not isinstance(raw_users, list):
        r.fail("auth.users", raw_users, "must be a list of users")
        raw_users = []
    seen: set[str] = set()
    for i, item in enumerate(raw_users):
        where = f"auth.users[{i}]"
        if not isinstance(item, Mapping):
            r.fail(where, item, "must be a map with email, username and password")
            continue
        r.unknown(where, item, {"email", "username", "userID", "password", "passwordHash"})
        email = r.string(item, where, "email", required=True) or ""
        if email and not _EMAIL.match(email):
            r.fail(f"{where}.email", email, "must be an e-mail address")
        if email in seen:
            r.fail(f"{where}.email", email, "appears twice; each user needs a distinct e-mail")
        seen.add(email)
        username = r.string(item, where, "username", email.split("@")[0]) or ""
        user_id = r.string(item, where, "userID", _stable_user_id(email)) or ""
        password = r.secret(item, "auth", where, "password")
        password_hash = r.secret(item, "auth", where, "passwordHash")
        if password is None and password_hash is None:
            r.fail(f"{where}.password", None, "set a password with `pulumi config set --secret "
                   f"--path '{where}.password' <password>` (or passwordHash with a bcrypt hash)")
        if password is not None and password_hash is not None:
            r.fail(f"{where}.passwordHash", "****", "set password or passwordHash, not both")
        if password_hash is not None and not _BCRYPT.match(password_hash.reveal()):
            r.fail(f"{where}.passwordHash", "****", "must be a bcrypt hash ($2y$10$...)")
        if password is not None and not dev and password.reveal() == UPSTREAM_DEFAULT_PASSWORD:
            r.fail(f"{where}.password", "****", "is the public upstream default; choose another "
                   "(it is allowed only on stacks with devStack: true)")
        if password is not None and len(password.reveal()) < 8:
            r.fail(f"{where}.password", "****", "must be at least 8 characters")
        users.append(DexUser(email, username, user_id, password, password_hash))

    client = r.section(data, "oidcClient") if "oidcClient" in data else {}
    r.unknown("auth.oidcClient", client, {"id", "secret", "redirectURIs"})
    client_id = r.string(client, "auth.oidcClient", "id", UPSTREAM_DEFAULT_CLIENT_ID) or ""
    client_secret = r.secret(client, "auth", "auth.oidcClient", "secret")
    if client_secret is None:
        if dev:
            client_secret = Secret(dev_client_secret(stack))
        else:
            r.fail("auth.oidcClient.secret", None, "set one with `pulumi config set --secret --path "
                   "'auth.oidcClient.secret' \"$(openssl rand -base64 24)\"`")
            client_secret = Secret("")
    elif not dev and is_upstream_client_secret(client_secret.reveal()):
        r.fail("auth.oidcClient.secret", "****", "is the public upstream default; generate another "
               "(allowed only on stacks with devStack: true)")
    elif not dev and len(client_secret.reveal()) < MIN_CLIENT_SECRET:
        r.fail("auth.oidcClient.secret", "****", f"must be at least {MIN_CLIENT_SECRET} characters; generate "
               "one with `openssl rand -hex 16`")
    redirects = client.get("redirectURIs", ["/oauth2/callback"])
    if not isinstance(redirects, list) or not redirects:
        r.fail("auth.oidcClient.redirectURIs", redirects, "must be a non-empty list of URIs")
        redirects = ["/oauth2/callback"]
    for i, uri in enumerate(redirects):
        if not isinstance(uri, str) or not (uri.startswith("/") or _URL.match(uri)):
            r.fail(f"auth.oidcClient.redirectURIs[{i}]", uri,
                   "must be a path on the gateway (/oauth2/callback) or an http(s) URL")
    cookie = r.secret(data, "auth", "auth", "cookieSecret")
    if cookie is None:
        # oauth2-proxy needs 16, 24 or 32 bytes; derive one from the client secret so that it is
        # stable across updates (a random one would change on every `pulumi up`).
        cookie = Secret(hashlib.sha256(b"cookie:" + client_secret.reveal().encode()).hexdigest()[:32])
    elif len(cookie.reveal()) not in (16, 24, 32):
        r.fail("auth.cookieSecret", "****", "must be 16, 24 or 32 characters long")
    connectors = data.get("connectors", []) or []
    if not isinstance(connectors, list):
        r.fail("auth.connectors", connectors, "must be a list of Dex connectors")
        connectors = []
    for i, conn in enumerate(connectors):
        if not isinstance(conn, Mapping) or conn.get("type") not in CONNECTOR_TYPES:
            r.fail(f"auth.connectors[{i}].type", conn.get("type") if isinstance(conn, Mapping) else conn,
                   f"must be one of: {', '.join(CONNECTOR_TYPES)}")
        elif "id" not in conn or "name" not in conn:
            r.fail(f"auth.connectors[{i}]", conn.get("id"), "needs id and name")
    issuer = (r.string(data, "auth", "issuer", AuthConfig.issuer) or "").rstrip("/")
    parsed = urlparse(issuer)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        r.fail("auth.issuer", issuer, "must be an http(s) URL such as https://kubeflow.example.com/dex")
    elif parsed.path.rstrip("/") != "/dex" or parsed.query or parsed.fragment:
        r.fail("auth.issuer", issuer, "must end in /dex, the path the gateway routes to Dex "
               "(such as https://kubeflow.example.com/dex)")
    return AuthConfig(users=tuple(users), client_id=client_id, client_secret=client_secret,
                      cookie_secret=cookie, issuer=issuer, redirect_uris=tuple(map(str, redirects)),
                      connectors=tuple(connectors))


def _profiles(r: _Reader, raw: Mapping[str, Any], auth: AuthConfig) -> tuple[ProfileConfig, ...]:
    value = raw.get("profiles")
    if value is None:
        # One profile per user, named like upstream's kubeflow-user-example-com.
        return tuple(ProfileConfig(profile_name_for(u.email), u.email) for u in auth.users)
    if not isinstance(value, list):
        r.fail("profiles", value, "must be a list of profiles")
        return ()
    profiles = []
    names: set[str] = set()
    for i, item in enumerate(value):
        where = f"profiles[{i}]"
        if not isinstance(item, Mapping):
            r.fail(where, item, "must be a map with name and owner")
            continue
        r.unknown(where, item, {"name", "owner", "ownerKind", "quota"})
        owner = r.string(item, where, "owner", required=True) or ""
        name = r.string(item, where, "name", profile_name_for(owner) if owner else None,
                        required=True) or ""
        if name and not _DNS_LABEL.match(name):
            r.fail(f"{where}.name", name, "must be a DNS label (it becomes a namespace)")
        if name in names:
            r.fail(f"{where}.name", name, "appears twice")
        names.add(name)
        quota = None
        if "quota" in item:
            q = r.section(item, "quota")
            qwhere = f"{where}.quota"
            r.unknown(qwhere, q, {"cpu", "memory", "gpu", "pvcs", "storage"})
            quota = Quota(cpu=r.quantity(q, qwhere, "cpu"), memory=r.quantity(q, qwhere, "memory"),
                          gpu=r.quantity(q, qwhere, "gpu"),
                          pvcs=r.integer(q, qwhere, "pvcs", 0) if "pvcs" in q else None,
                          storage=r.quantity(q, qwhere, "storage"))
        profiles.append(ProfileConfig(name, owner,
                                      r.string(item, where, "ownerKind", "User",
                                               choices=("User", "Group")) or "User", quota))
        _check_owner(r, f"{where}.owner", profiles[-1], auth)
    return tuple(profiles)


def _check_owner(r: _Reader, key: str, profile: ProfileConfig, auth: AuthConfig) -> None:
    """A profile's owner signs in to use it: with only the stack's own Dex users (no connector that
    brings others), a user owner must be one of them."""
    emails = [u.email for u in auth.users]
    if profile.owner_kind != "User" or auth.connectors or not emails or not profile.owner:
        return
    if profile.owner not in emails:
        r.fail(key, profile.owner, f"not a user of this stack's Dex, so no one can sign in as the owner; users are: "
               f"{', '.join(emails)}; add them to auth.users, or add a connector (auth.connectors) that signs them in")


def _images(r: _Reader, raw: Mapping[str, Any]) -> ImagesConfig:
    data = r.section(raw, "images")
    r.unknown("images", data, {"registry", "overrides", "pullPolicy"})
    registry = r.matching(data, "images", "registry", None, _REGISTRY,
                          "must be a registry host with an optional path, such as registry.local:5000/kubeflow")
    overrides: dict[str, str] = {}
    raw_overrides = data.get("overrides", {}) or {}
    if not isinstance(raw_overrides, Mapping):
        r.fail("images.overrides", raw_overrides, "must map upstream images to the images to run instead")
        raw_overrides = {}
    for source, target in sorted(raw_overrides.items()):
        if not isinstance(target, str) or not _IMAGE.match(target) or not _IMAGE.match(str(source)):
            r.fail(f"images.overrides.{source}", target, "must map an image reference to an image reference "
                   "(name:tag or name@sha256:digest)")
            continue
        overrides[str(source)] = target
    policy = r.string(data, "images", "pullPolicy", None, choices=PULL_POLICIES)
    return ImagesConfig(registry=registry.rstrip("/") if registry else None, overrides=overrides,
                        pull_policy=policy)


def _gateway(r: _Reader, raw: Mapping[str, Any]) -> GatewayConfig:
    data = r.section(raw, "gateway")
    r.unknown("gateway", data, {"kind"})
    return GatewayConfig(kind=r.string(data, "gateway", "kind", "istio", choices=GATEWAY_KINDS) or "istio")


def reference_problems(cmap: ComponentMap, kubeflow: KubeflowConfig, storage: StorageConfig,
                       gateway: GatewayConfig) -> list[Problem]:
    """What the config names of upstream's objects, checked against the release's map: component
    names, what the selection needs, claim names and the stand-in gateway's place. Run when the
    config is parsed (hand-written maps) and when a map is derived from a tree, before kustomize."""
    problems = [Problem(f"kubeflow.{key}[{i}]", name, f"unknown component; {cmap.release} ({cmap.source}) has: "
                        f"{', '.join(cmap.components)}") for key, i, name in unknown_components(cmap, kubeflow)]
    if problems:
        return problems  # the selection, which the checks below need, is not known
    problems += [Problem(key, value, fix) for key, value, fix in requirement_problems(cmap, kubeflow)]
    selected = select_components(cmap, kubeflow)
    owners = cmap.claim_owners()
    valid = sorted(claim for claim, owner in owners.items() if owner in selected)
    listing = f"claims of the selected components: {', '.join(valid) or 'none'}"
    for claim in storage.claims:
        if claim in valid:
            continue
        owner = owners.get(claim)
        problems.append(Problem(f"storage.claims.{claim}", claim, (
            f"a claim of {owner}, which the stack leaves out; remove the override or deploy {owner}; {listing}"
            if owner else f"no such claim in {cmap.release}; {listing}")))
    if gateway.standin and "istio" in selected:
        problems.append(Problem("gateway.kind", gateway.kind, "takes the place of Istio's ingress gateway, "
                                "but the stack deploys istio: add istio to kubeflow.exclude (Istio's CRDs may stay, "
                                "as the istio-crds component), or set gateway.kind: istio"))
    return problems


def is_upstream_client_secret(value: str) -> bool:
    return hashlib.sha256(value.encode()).hexdigest() == UPSTREAM_CLIENT_SECRET_SHA256


def dev_client_secret(stack: str) -> str:
    """A dev stack's OIDC client secret when none is set: stable per stack (so updates change
    nothing), not upstream's public one. Dev stacks only: anyone can derive it."""
    return hashlib.sha256(f"kubeflow-stacks/dev-oidc-client/{stack}".encode()).hexdigest()[:32]


def profile_name_for(email: str) -> str:
    """Upstream's naming: user@example.com owns the namespace kubeflow-user-example-com."""
    local = re.sub(r"[^a-z0-9]+", "-", email.lower()).strip("-")
    return f"kubeflow-{local}"[:63].rstrip("-")


def _stable_user_id(email: str) -> str:
    return str(int(hashlib.sha256(email.encode()).hexdigest()[:12], 16))


def parse_stack_config(stack: str, raw: Mapping[str, Any],
                       secret_keys: frozenset[str] | set[str] = frozenset()) -> StackConfig:
    """Validate raw config (top-level keys without the project prefix) into a `StackConfig`.

    `secret_keys` names the top-level keys Pulumi holds as secrets; a password under any other
    key is an error, since it would sit in the stack file as plain text.
    """
    r = _Reader(frozenset(secret_keys))
    r.unknown("", raw, set(CONFIG_KEYS))
    dev_value = r.boolean(raw, "", "devStack", False)
    cluster = _cluster(r, raw)
    kubeflow = _kubeflow(r, raw)
    storage = _storage(r, raw)
    auth = _auth(r, raw, dev_value, stack)
    profiles = _profiles(r, raw, auth)
    images = _images(r, raw)
    gateway = _gateway(r, raw)
    if has_hand_written_map(kubeflow.release):  # otherwise checked when the map is derived from the tree
        r.problems += reference_problems(load_component_map(kubeflow.release), kubeflow, storage, gateway)
    if cluster.provider in ("eks", "gke", "aks") and storage.mode == "local-path":
        r.fail("storage.mode", storage.mode, "local-path suits single-node clusters; on a managed "
               "cluster use existing (the cloud's block-storage class) or nfs-subdir")
    if r.problems:
        raise ConfigError(r.problems)
    return StackConfig(stack=stack, dev=dev_value, cluster=cluster, kubeflow=kubeflow,
                       storage=storage, auth=auth, profiles=profiles, images=images,
                       gateway=gateway)
