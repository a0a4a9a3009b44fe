"""The cluster section: one model per provider, told apart by `provider` (kind when unset).

Each model is also its cluster component's input (infra/clusters/), and a local cluster's
`props()` are the inputs of its dynamic resource, so a setting and its default are written once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    model_validator,
)

from infra.settings.fields import (
    HOST,
    URL,
    AbsolutePath,
    DnsLabel,
    Flag,
    Positive,
    Quantity,
    Section,
    Text,
    Whole,
    _flag,
    _text,
    _whole,
    fail,
    listing,
    matches,
    minimum,
)
from infra.versions import load_versions

Provider = Literal["kind", "minikube", "existing", "sim", "eks", "gke", "aks"]
CLUSTER_PROVIDERS: tuple[str, ...] = get_args(Provider)
LOCAL_PROVIDERS = ("kind", "minikube", "sim")
MinikubeDriver = Literal["docker", "podman", "kvm2", "qemu2", "virtualbox", "hyperkit", "vfkit", "hyperv", "none",
                         "ssh"]
MINIKUBE_DRIVERS: tuple[str, ...] = get_args(MinikubeDriver)
MinikubeRuntime = Literal["containerd", "docker", "cri-o"]
MinikubeCni = Literal["auto", "bridge", "calico", "cilium", "flannel", "kindnet"]
# Drivers whose node is a container on the host's runtime: minikube refuses more CPUs than it has.
CONTAINER_DRIVERS = ("docker", "podman")
NetworkPolicyEnforcer = Literal["cni", "kube-network-policies"]

# kind's own defaults, set explicitly: the host's blackhole routes (infra/runtime/routes.py) and the
# node image built here (its static CNI range lies in the pod subnet) must agree with the cluster.
KIND_POD_SUBNET = "10.244.0.0/16"
KIND_SERVICE_SUBNET = "10.96.0.0/16"
_MINIKUBE_SIZE = re.compile(r"^[0-9]+(\.[0-9]+)?([kmgt]b?|[KMGT]B?)?$")
# An image pinned by a digest, or by a tag (a colon after the last slash: not a registry's port).
_PINNED = re.compile(r"^(.*@sha256:.*|(.*/)?[^/]*:[^/]*)$")
_K8S_VERSION = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+$")
_MANAGED_K8S_VERSION = re.compile(r"^[0-9]+\.[0-9]+(\.[0-9]+)?$")


def _tagged(image: Any) -> bool:
    return isinstance(image, str) and ":" in image.rsplit("/", 1)[-1]


# Named sets a preload list may hold beside image references (a name has no tag, so no image is
# mistaken for one): `componentImages` is every upstream image built here ([component_images] in
# infra/versions.toml), so the stacks that run them (kind-local, minikube-local) list them once.
IMAGE_SETS: dict[str, Callable[[], tuple[str, ...]]] = {
    "componentImages": lambda: load_versions().component_images,
}


def _expand_sets(value: Any) -> Any:
    """Each set name in the list replaced by its images, in order, each image once."""
    if not isinstance(value, (list, tuple)):
        return value
    expanded: list[Any] = []
    for item in value:
        for image in (IMAGE_SETS[item]() if isinstance(item, str) and item in IMAGE_SETS else (item,)):
            if image not in expanded:
                expanded.append(image)
    return expanded


# Local images loaded into a local cluster's nodes (only those a node lacks, by image ID).
PreloadImages = Annotated[tuple[str, ...], listing(
    "must be a list of image references with tags, such as ghcr.io/kubeflow/kubeflow/kfam:v1.10.0, or "
    f"the set{'s' if len(IMAGE_SETS) > 1 else ''} {', '.join(IMAGE_SETS)} (every image `kfstack nodeimage "
    "components` builds)", item=_tagged), BeforeValidator(_expand_sets)]
# What enforces NetworkPolicy: the node's CNI (kind's kindnetd does), or, where the cluster's
# network enforces none (kind's static ptp network built here, minikube's bridge CNI), the
# kube-network-policies agent the stack runs (infra/patches/netpolicy.py).
NetworkPolicy = Annotated[NetworkPolicyEnforcer, BeforeValidator(_text)]

# A port: at least 1 here, at most 65535 checked with both ports (the problem names the mapping).
Port = Annotated[int, _whole(1), WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 65535})]


class PortMapping(Section):
    not_a_map: ClassVar[str] = "needs containerPort and hostPort"

    container_port: Port
    host_port: Port
    listen_address: Annotated[str, BeforeValidator(str),
                              matches(HOST, "must be an IP address such as 127.0.0.1")] = "127.0.0.1"

    @model_validator(mode="before")
    @classmethod
    def _both_ports(cls, data: Any) -> Any:
        if isinstance(data, dict) and not {"containerPort", "hostPort"} <= set(data) and "container_port" not in data:
            raise fail(cls.not_a_map)
        return data

    @model_validator(mode="after")
    def _in_range(self) -> PortMapping:
        if max(self.container_port, self.host_port) > 65535:
            raise fail("ports must be between 1 and 65535")
        return self


class KindSettings(Section):
    node_image: Annotated[str, BeforeValidator(_text), matches(
        _PINNED, "pin the node image with a tag (kindest/node:v1.34.0) or a digest")] = Field(
        default_factory=lambda: load_versions().kind_node_image)
    control_planes: Positive = 1
    workers: Whole = 0
    service_account_issuer: Annotated[str, BeforeValidator(_text), matches(
        URL, "must be an https URL such as https://kubernetes.default.svc")] = "https://kubernetes.default.svc"
    service_account_signing_key_file: AbsolutePath = "/etc/kubernetes/pki/sa.key"
    extra_port_mappings: Annotated[tuple[PortMapping, ...], listing("must be a list of port mappings")] = ()
    # Local images `kind load`ed into the nodes after create (images built here, no registry).
    preload_images: PreloadImages = ()
    network_policy: NetworkPolicy = "cni"



class MinikubeSettings(Section):
    driver: Annotated[MinikubeDriver, BeforeValidator(_text)] = "docker"
    # At most the container runtime's cores with the docker and podman drivers (checked before start:
    # minikube would stop with "not enough CPUs"); minikube's own default is 2.
    cpus: Annotated[int, _whole(2), minimum(2)] = 2
    memory: Annotated[str, BeforeValidator(_text),
                      matches(_MINIKUBE_SIZE, "must be a size minikube reads, such as 16g or 16384mb")] = "16g"
    disk: Annotated[str, BeforeValidator(_text), matches(_MINIKUBE_SIZE, "must be a size such as 50g")] = "50g"
    kubernetes_version: Annotated[str, BeforeValidator(_text), matches(
        _K8S_VERSION, "must be a Kubernetes version such as v1.34.2")] = "v1.34.2"
    # The node's image: upstream's kicbase for this minikube ([minikube] in versions.toml), or the one
    # built here (`kfstack nodeimage kicbase`: kfstack/kicbase:<minikube version>).
    base_image: Annotated[str, BeforeValidator(_text), matches(
        _PINNED, "pin the base image with a tag (kfstack/kicbase:v1.37.0) or a digest")] = Field(
        default_factory=lambda: load_versions().minikube_base_image)
    # containerd: what the kicbase built here runs (upstream's kicbase also has docker and cri-o).
    container_runtime: Annotated[MinikubeRuntime, BeforeValidator(_text)] = "containerd"
    # bridge: no image needed, one node (minikube's default for containerd, kindnet, pulls an image).
    cni: Annotated[MinikubeCni, BeforeValidator(_text)] = "bridge"
    # Local images loaded into the node after start and when the list changes (images built here).
    preload_images: PreloadImages = ()
    # minikube's bridge CNI enforces no NetworkPolicy (nor does kindnet); calico and cilium do.
    network_policy: NetworkPolicy = "cni"


class ExistingSettings(Section):
    kubeconfig: Text
    context: Text | None = None


class SimSettings(Section):
    nodes: Positive = 1
    node_cpu: Quantity = "16"
    node_memory: Quantity = "64Gi"
    node_pods: Annotated[int, _whole(10), minimum(10)] = 250


class ManagedSettings(Section):
    """A managed cloud cluster: enough of the shape that all three clouds share."""

    region: Text
    kubernetes_version: Annotated[str, BeforeValidator(_text), matches(
        _MANAGED_K8S_VERSION, "must be a version the cloud offers, such as 1.34")] | None = None
    node_type: Text | None = None
    nodes: Positive = 2
    min_nodes: Positive = 2
    max_nodes: Positive = 4

    @model_validator(mode="after")
    def _sizes(self) -> ManagedSettings:
        if self.min_nodes > self.max_nodes:
            raise fail("must not exceed maxNodes", at=("minNodes",), value=self.min_nodes)
        return self


class EksSettings(ManagedSettings):
    pass


class GkeSettings(ManagedSettings):
    project: Text


class AksSettings(ManagedSettings):
    resource_group: Text | None = None


def _no_adopt(value: bool) -> bool:
    if value:
        raise fail(f"applies to clusters the stack creates ({', '.join(LOCAL_PROVIDERS)}); "
                   "remove it (an existing cluster is never created or deleted)")
    return value


class ClusterBase(Section):
    """What every provider's section has: the provider, and the cluster's name."""

    provider: Provider
    name: DnsLabel = "kubeflow"

    @model_validator(mode="before")
    @classmethod
    def _provider_section(cls, data: Any) -> Any:
        """An unset provider section is an empty one, so its own required keys are named."""
        if isinstance(data, dict) and isinstance(data.get("provider"), str) and data.get(data["provider"]) is None:
            return {**data, data["provider"]: {}}
        return data


class LocalClusterConfig(ClusterBase):
    """A cluster the stack creates (and `pulumi destroy` deletes) with a local binary."""

    # Take over a running cluster of this name (destroy then deletes it).
    adopt: Flag = False

    @property
    def settings(self) -> Section:
        """The provider's own section (cluster.<provider>)."""
        raise NotImplementedError

    @property
    def network_policy(self) -> str:
        """What enforces NetworkPolicy: the CNI, or an agent the stack runs (kube-network-policies)."""
        return str(getattr(self.settings, "network_policy", "cni"))

    def props(self) -> dict[str, Any]:
        """The inputs of the cluster's dynamic resource: its name and its provider's settings, but
        networkPolicy: the render's (it adds the agent's objects), not the cluster's lifecycle."""
        settings = self.settings.model_dump(mode="json", by_alias=True, exclude={"network_policy"})
        return {"name": self.name, **settings}


class RemoteClusterConfig(ClusterBase):
    """A cluster the stack does not create with a local binary: an existing one, or a cloud's."""

    adopt: Annotated[bool, BeforeValidator(_flag), AfterValidator(_no_adopt),
                     WithJsonSchema({"anyOf": [{"const": False}, {"const": "false"}]})] = False


class KindClusterConfig(LocalClusterConfig):
    provider: Literal["kind"] = "kind"
    kind: KindSettings = Field(default_factory=KindSettings)

    @property
    def settings(self) -> KindSettings:
        return self.kind

    def props(self) -> dict[str, Any]:
        return {**super().props(), "podSubnet": KIND_POD_SUBNET, "serviceSubnet": KIND_SERVICE_SUBNET}


class MinikubeClusterConfig(LocalClusterConfig):
    provider: Literal["minikube"]
    minikube: MinikubeSettings = MinikubeSettings()

    @property
    def settings(self) -> MinikubeSettings:
        return self.minikube


class SimClusterConfig(LocalClusterConfig):
    provider: Literal["sim"]
    sim: SimSettings = SimSettings()

    @property
    def settings(self) -> SimSettings:
        return self.sim


class ExistingClusterConfig(RemoteClusterConfig):
    provider: Literal["existing"]
    existing: ExistingSettings


class ManagedClusterConfig(RemoteClusterConfig):
    """A cloud's cluster, made and deleted by the cloud's own Pulumi provider."""

    @property
    def managed(self) -> ManagedSettings:
        raise NotImplementedError


class EksClusterConfig(ManagedClusterConfig):
    provider: Literal["eks"]
    eks: EksSettings

    @property
    def managed(self) -> ManagedSettings:
        return self.eks


class GkeClusterConfig(ManagedClusterConfig):
    provider: Literal["gke"]
    gke: GkeSettings

    @property
    def managed(self) -> ManagedSettings:
        return self.gke


class AksClusterConfig(ManagedClusterConfig):
    provider: Literal["aks"]
    aks: AksSettings

    @property
    def managed(self) -> ManagedSettings:
        return self.aks


BY_PROVIDER: dict[str, type[ClusterBase]] = {
    "kind": KindClusterConfig, "minikube": MinikubeClusterConfig, "existing": ExistingClusterConfig,
    "sim": SimClusterConfig, "eks": EksClusterConfig, "gke": GkeClusterConfig, "aks": AksClusterConfig}


def _provider(data: Any) -> str | None:
    if isinstance(data, ClusterBase):
        return data.provider
    if not isinstance(data, dict):
        return "kind"  # and the kind model says what is wrong with it
    provider = data.get("provider")
    return "kind" if provider is None else provider if isinstance(provider, str) else None


ClusterConfig = Annotated[
    Annotated[KindClusterConfig, Tag("kind")] | Annotated[MinikubeClusterConfig, Tag("minikube")]
    | Annotated[ExistingClusterConfig, Tag("existing")] | Annotated[SimClusterConfig, Tag("sim")]
    | Annotated[EksClusterConfig, Tag("eks")] | Annotated[GkeClusterConfig, Tag("gke")]
    | Annotated[AksClusterConfig, Tag("aks")],
    Discriminator(_provider)]
