"""What the stack deploys: the Kubeflow release and its components, where images come from, and
what answers at the front door."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, model_validator

from infra.settings.fields import Problem, Section, Text, _text, listing, mapping, matches

ComponentSet = Literal["full", "core", "local"]
COMPONENT_SETS: tuple[str, ...] = get_args(ComponentSet)
# `components: local`: the core set as it runs from images built on a machine that reaches no
# registry (kind-local, minikube-local; the reasons are in stacks/Pulumi.kind-local.yaml): Istio's
# CRDs for upstream's objects to apply, without what needs Envoy (Istio's proxy, Knative's
# gateways), the Node dashboard, and the Pipelines parts a v2 run does not use. It is read as
# `core` with these added to the stack's own include and exclude.
LOCAL_INCLUDE = ("istio-crds",)
LOCAL_EXCLUDE = ("istio", "kubeflow-istio-resources", "knative-serving", "centraldashboard",
                 "pipelines/ui", "pipelines/metadata-envoy", "pipelines/metadata-writer", "pipelines/viewer",
                 "pipelines/visualization", "pipelines/cache", "pipelines/scheduledworkflow")
# KServe's modes the manifests can be set to: Serverless (upstream Kubeflow's default: Knative and
# Istio) or RawDeployment (plain Deployments and Services, where Knative cannot run).
KServeMode = Literal["Serverless", "RawDeployment"]
KSERVE_DEPLOYMENT_MODES: tuple[str, ...] = get_args(KServeMode)
PullPolicy = Literal["Always", "IfNotPresent", "Never"]
PULL_POLICIES: tuple[str, ...] = get_args(PullPolicy)
GatewayKind = Literal["istio", "standin"]
GATEWAY_KINDS: tuple[str, ...] = get_args(GatewayKind)

_RELEASE = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+(-rc\.[0-9]+)?$")
_REGISTRY = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]([-a-z0-9._/]*[a-z0-9])?)?/?$")
IMAGE = re.compile(r"^[a-z0-9][-a-z0-9._:/]*[a-z0-9](:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$")

_Components = Annotated[tuple[str, ...],
                        listing("must be a list of component names", item=lambda v: isinstance(v, str))]


class KServeConfig(Section):
    not_a_map: ClassVar[str] = "must be a map of settings, such as {deploymentMode: RawDeployment}"

    # None keeps upstream's inferenceservice-config as it is.
    deployment_mode: Annotated[KServeMode, BeforeValidator(_text)] | None = None


class KubeflowConfig(Section):
    release: Annotated[str, BeforeValidator(_text),
                       matches(_RELEASE, "must be a release tag such as v1.11.0")] = "v1.11.0"
    manifests_path: Text | None = Field(default=None, alias="manifests")
    components: Annotated[ComponentSet, BeforeValidator(_text)] = "full"
    include: _Components = ()
    exclude: _Components = ()
    kserve: KServeConfig = KServeConfig()

    @model_validator(mode="after")
    def _local_set(self) -> KubeflowConfig:
        """`local` as `core` with its additions; what the stack itself includes is not excluded."""
        if self.components == "local":
            include = tuple(dict.fromkeys((*LOCAL_INCLUDE, *self.include)))
            exclude = tuple(dict.fromkeys((*(e for e in LOCAL_EXCLUDE if e not in self.include), *self.exclude)))
            object.__setattr__(self, "components", "core")
            object.__setattr__(self, "include", include)
            object.__setattr__(self, "exclude", exclude)
        return self

    @property
    def kserve_deployment_mode(self) -> str | None:
        return self.kserve.deployment_mode


class ImagesConfig(Section):
    """Where the stack's images come from: a registry that mirrors them all, exact overrides per
    upstream image, and the pull policy for every container (air-gapped installs,
    images built locally)."""

    registry: Annotated[str, BeforeValidator(_text), matches(
        _REGISTRY, "must be a registry host with an optional path, such as registry.local:5000/kubeflow"),
        AfterValidator(lambda v: v.rstrip("/"))] | None = None
    overrides: Annotated[Mapping[str, Any], mapping("must map upstream images to the images to run instead"),
                         AfterValidator(lambda m: dict(sorted(m.items()))),
                         WithJsonSchema({"type": "object", "additionalProperties": {
                             "type": "string", "pattern": IMAGE.pattern}})] = Field(default_factory=dict)
    pull_policy: Annotated[PullPolicy, BeforeValidator(_text)] | None = None

    @property
    def active(self) -> bool:
        return bool(self.registry or self.overrides or self.pull_policy)

    def problems(self) -> list[Problem]:
        """Overrides that are no image references (both sides are checked together)."""
        return [Problem(f"images.overrides.{source}", target, "must map an image reference to an image reference "
                 "(name:tag or name@sha256:digest)")
                for source, target in sorted(self.overrides.items())
                if not isinstance(target, str) or not IMAGE.match(target) or not IMAGE.match(str(source))]


class GatewayConfig(Section):
    """What answers at the stack's front door: Istio's ingress gateway (upstream), or the project's
    nginx stand-in where Envoy cannot run (it routes /dex and /oauth2 and checks sessions with the
    real oauth2-proxy, as the local target's gateway does)."""

    kind: Annotated[GatewayKind, BeforeValidator(_text)] = "istio"

    @property
    def standin(self) -> bool:
        return self.kind == "standin"
