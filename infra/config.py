"""The typed model of a stack: one place that knows every config key, its default and its checks.

Raw Pulumi config (a mapping of top-level keys to parsed JSON values) goes in, a frozen
`StackConfig` comes out, or a `ConfigError` that lists every problem at once, each naming the key,
the value and the fix. The sections' models live in infra/settings/ (one per concern); this module
puts them together and runs the checks across sections. Nothing here touches Pulumi, so the render
path and the tests use it as is. Every name of an upstream object (components, claims) is checked
against the release's component map (infra/manifests/components.py, a leaf module) here, when the
config is parsed; a release without a hand-written map is checked with the same function once its
map is derived from the tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from infra.manifests.components import (
    ComponentMap,
    has_hand_written_map,
    load_component_map,
    requirement_problems,
    select_components,
    unknown_components,
)
from infra.settings.auth import (
    CONNECTOR_TYPES,
    MIN_CLIENT_SECRET,
    UPSTREAM_CLIENT_SECRET_SHA256,
    UPSTREAM_DEFAULT_CLIENT_ID,
    UPSTREAM_DEFAULT_PASSWORD,
    AuthConfig,
    DexUser,
    OidcClient,
    ProfileConfig,
    Profiles,
    Quota,
    dev_client_secret,
    is_upstream_client_secret,
    profile_name_for,
    profile_problems,
)
from infra.settings.cluster import (
    BY_PROVIDER,
    CLUSTER_PROVIDERS,
    LOCAL_PROVIDERS,
    MINIKUBE_DRIVERS,
    AksClusterConfig,
    AksSettings,
    ClusterConfig,
    EksClusterConfig,
    EksSettings,
    ExistingClusterConfig,
    ExistingSettings,
    GkeClusterConfig,
    GkeSettings,
    KindClusterConfig,
    KindSettings,
    LocalClusterConfig,
    ManagedClusterConfig,
    ManagedSettings,
    MinikubeClusterConfig,
    MinikubeSettings,
    PortMapping,
    SimClusterConfig,
    SimSettings,
)
from infra.settings.fields import PROJECT, ConfigError, Flag, Problem, Secret, Section
from infra.settings.kubeflow import (
    COMPONENT_SETS,
    GATEWAY_KINDS,
    KSERVE_DEPLOYMENT_MODES,
    PULL_POLICIES,
    GatewayConfig,
    ImagesConfig,
    KubeflowConfig,
)
from infra.settings.storage import STORAGE_MODES, ClaimOverride, StorageConfig
from infra.settings.validate import validate_section

__all__ = [
    "CLUSTER_PROVIDERS", "COMPONENT_SETS", "CONFIG_KEYS", "CONNECTOR_TYPES", "GATEWAY_KINDS",
    "KSERVE_DEPLOYMENT_MODES", "LOCAL_PROVIDERS", "MINIKUBE_DRIVERS", "MIN_CLIENT_SECRET", "PROJECT",
    "PULL_POLICIES", "STORAGE_MODES", "UPSTREAM_CLIENT_SECRET_SHA256", "UPSTREAM_DEFAULT_CLIENT_ID",
    "UPSTREAM_DEFAULT_PASSWORD", "AksClusterConfig", "AksSettings", "AuthConfig", "ClaimOverride", "ClusterConfig",
    "ConfigError", "DexUser", "EksClusterConfig", "EksSettings", "ExistingClusterConfig", "ExistingSettings",
    "GatewayConfig", "GkeClusterConfig", "GkeSettings", "ImagesConfig", "KindClusterConfig", "KindSettings",
    "KubeflowConfig", "LocalClusterConfig", "ManagedClusterConfig", "ManagedSettings", "MinikubeClusterConfig",
    "MinikubeSettings",
    "OidcClient", "PortMapping", "Problem", "ProfileConfig", "Quota", "Secret", "SimClusterConfig", "SimSettings",
    "StackConfig", "StackSettings", "StorageConfig", "cluster_config", "dev_client_secret",
    "is_upstream_client_secret", "parse_stack_config", "profile_name_for", "reference_problems",
]


class StackSettings(Section):
    """A stack file's config (`kubeflow-stacks:<key>`), as written: the source of its JSON Schema
    (infra/settings/schema.py) and of each section's model."""

    dev_stack: Flag = False
    cluster: ClusterConfig = Field(default_factory=KindClusterConfig)
    kubeflow: KubeflowConfig = KubeflowConfig()
    storage: StorageConfig = StorageConfig()
    auth: AuthConfig = Field(default=AuthConfig(), description="users and secrets: set them with `pulumi config set "
                             "--secret --path`; a dev stack (devStack: true) may leave them unset")
    profiles: Profiles = Field(default=(), description="default: one profile per user, named after the e-mail")
    images: ImagesConfig = ImagesConfig()
    gateway: GatewayConfig = GatewayConfig()


# The top-level keys of a stack's config (`kubeflow-stacks:<key>`), each with its field.
_FIELDS = {f.alias or n: f for n, f in StackSettings.model_fields.items()}
CONFIG_KEYS = tuple(_FIELDS)


class StackConfig(BaseModel):
    """A stack's validated config: its name, and each section with the stack's defaults filled in."""

    model_config = ConfigDict(frozen=True)

    stack: str
    dev: bool
    cluster: ClusterConfig
    kubeflow: KubeflowConfig
    storage: StorageConfig
    auth: AuthConfig
    profiles: tuple[ProfileConfig, ...]
    images: ImagesConfig = ImagesConfig()
    gateway: GatewayConfig = GatewayConfig()


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


def _section(raw: Mapping[str, Any], key: str, problems: list[Problem]) -> Any:
    """The top-level section `key` validated (its default when unset), its problems added."""
    field = _FIELDS[key]
    value = raw.get(key)
    if value is None:
        return field.get_default(call_default_factory=True)
    tp = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    model, found = validate_section(tp, value, key,
                                    tagged=BY_PROVIDER if key == "cluster" else None)
    problems += found
    return model


def cluster_config(raw: Any) -> ClusterConfig:
    """The cluster section alone (the conformance teardown reads it from a stack's config)."""
    problems: list[Problem] = []
    cluster: ClusterConfig = _section({"cluster": raw}, "cluster", problems)
    if problems:
        raise ConfigError(problems)
    return cluster


def parse_stack_config(stack: str, raw: Mapping[str, Any],
                       secret_keys: frozenset[str] | set[str] = frozenset()) -> StackConfig:
    """Validate raw config (top-level keys without the project prefix) into a `StackConfig`.

    `secret_keys` names the top-level keys Pulumi holds as secrets; a password under any other
    key is an error, since it would sit in the stack file as plain text.
    """
    problems = [Problem(name, raw[name], f"unknown setting; expected one of: {', '.join(sorted(CONFIG_KEYS))}")
                for name in sorted(set(raw) - set(CONFIG_KEYS))]
    dev = bool(_section(raw, "devStack", problems))
    cluster = _section(raw, "cluster", problems)
    kubeflow = _section(raw, "kubeflow", problems) or KubeflowConfig()
    storage = _section(raw, "storage", problems) or StorageConfig()
    auth = _section(raw, "auth", problems)
    profiles = _section(raw, "profiles", problems) or ()
    images = _section(raw, "images", problems) or ImagesConfig()
    gateway = _section(raw, "gateway", problems) or GatewayConfig()
    # The checks across values. A key whose value was refused above is not named again (its
    # default stood in for it).
    refused = {p.key for p in problems}
    found = storage.problems() + images.problems()
    if auth is not None:
        found += auth.problems(dev, "auth" in secret_keys)
        auth = auth.resolved(dev, stack)
        if raw.get("profiles") is None:
            # One profile per user, named like upstream's kubeflow-user-example-com.
            profiles = tuple(ProfileConfig(name=profile_name_for(u.email), owner=u.email) for u in auth.users)
    found += profile_problems(profiles, auth)
    if has_hand_written_map(kubeflow.release):  # otherwise checked when the map is derived from the tree
        found += reference_problems(load_component_map(kubeflow.release), kubeflow, storage, gateway)
    if cluster is not None and cluster.provider in ("eks", "gke", "aks") and storage.mode == "local-path":
        found.append(Problem("storage.mode", storage.mode, "local-path suits single-node clusters; on a managed "
                             "cluster use existing (the cloud's block-storage class) or nfs-subdir"))
    problems += [p for p in found if p.key not in refused]
    if problems or cluster is None or auth is None:
        raise ConfigError(problems)
    return StackConfig(stack=stack, dev=dev, cluster=cluster, kubeflow=kubeflow, storage=storage, auth=auth,
                       profiles=profiles, images=images, gateway=gateway)
