"""kind: the default dev cluster, created and deleted by the pinned `kind` binary.

The cluster config carries the API-server settings Kubeflow's M2M tokens need (service-account
issuer and signing key, as upstream's kind setup sets them). Changing the node image, node counts
or API-server settings replaces the cluster, and `pulumi preview` says so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import yaml

from infra.clusters import kubelet
from infra.clusters.base import Cluster, cluster_settings
from infra.clusters.late_images import LateImagesResource, labelled_containers
from infra.clusters.local import ContainerNodesProvider, LocalClusterResource, note, whole
from infra.clusters.preload import Preloader, normalize
from infra.config import KindClusterConfig, StackConfig
from infra.paths import clusters_dir
from infra.runtime import cgroups, docker, freezer, routes
from infra.settings.cluster import KIND_POD_SUBNET, KIND_SERVICE_SUBNET
from smoke_tests.run import CommandError, run

CREATE_TIMEOUT_S = 900
DEFAULT_POD_SUBNET = KIND_POD_SUBNET
DEFAULT_SERVICE_SUBNET = KIND_SERVICE_SUBNET


def kind_config(props: dict[str, Any]) -> dict[str, Any]:
    """kind's cluster config for the given inputs (pure, so tests can read it).

    kind v0.30.0 writes a kubeadm v1beta3 ClusterConfiguration for every Kubernetes version it
    supports, where `apiServer.extraArgs` is a map, and applies our patch as a JSON merge patch:
    a map merges with kind's own API-server arguments, a v1beta4-style list would replace them and
    stop `kubeadm init`.
    """
    patch = {"kind": "ClusterConfiguration", "apiServer": {"extraArgs": {
        "service-account-issuer": props["serviceAccountIssuer"],
        "service-account-signing-key-file": props["serviceAccountSigningKeyFile"],
    }}}
    control: dict[str, Any] = {"role": "control-plane", "image": props["nodeImage"],
                               "kubeadmConfigPatches": [yaml.safe_dump(patch, sort_keys=False)]}
    if props.get("extraPortMappings"):
        control["extraPortMappings"] = [
            {**m, "containerPort": whole(m["containerPort"]), "hostPort": whole(m["hostPort"])}
            for m in props["extraPortMappings"]]
    nodes = [control] + [{"role": "control-plane", "image": props["nodeImage"]}
                         for _ in range(whole(props["controlPlanes"]) - 1)]
    nodes += [{"role": "worker", "image": props["nodeImage"]} for _ in range(whole(props["workers"]))]
    return {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "name": props["name"],
            "networking": {"podSubnet": props.get("podSubnet", DEFAULT_POD_SUBNET),
                           "serviceSubnet": props.get("serviceSubnet", DEFAULT_SERVICE_SUBNET)},
            "nodes": nodes}


def _workdir(name: str) -> Path:
    path = clusters_dir() / f"kind-{name}"
    path.mkdir(parents=True, exist_ok=True)
    return path




def _route_owner(props: dict[str, Any]) -> str:
    return f"kind:{props['name']}"


def _ranges(props: dict[str, Any]) -> list[str]:
    return [props.get("serviceSubnet", DEFAULT_SERVICE_SUBNET), props.get("podSubnet", DEFAULT_POD_SUBNET)]


def kind_cli(*args: str, timeout: float = 120) -> str:
    from infra.toolchain import tool_path, tools_env

    return run([tool_path("kind"), *args], timeout=timeout, env=tools_env()).stdout


def create_watching_kubelet(name: str, *args: str) -> str:
    """`kind create cluster ...`, failed within seconds when a node's kubelet keeps exiting."""
    from infra.toolchain import tool_path, tools_env

    return kubelet.run_watching_kubelet(
        [tool_path("kind"), *args], timeout=CREATE_TIMEOUT_S, env=tools_env(),
        nodes=lambda: kubelet.running_containers(f"io.x-k8s.kind.cluster={name}"),
        diagnostics=_workdir(name) / "kubelet-journal.txt")


def node_label(name: str) -> str:
    """The label kind puts on each node container of cluster `name`."""
    return f"io.x-k8s.kind.cluster={name}"


def node_containers(name: str) -> list[str]:
    """The ids of kind cluster `name`'s node containers."""
    return labelled_containers(node_label(name))


def delete_kind_cluster(name: str, delete: Callable[[], object]) -> None:
    """Run `delete` (a `kind delete cluster` of `name`); when it fails, thaw what the nodes left
    frozen inside themselves (infra/runtime/freezer.py) and run it once more."""
    try:
        delete()
    except CommandError:
        thawed = [c for node in node_containers(name) for c in freezer.thaw_container(node, say=note)]
        if not thawed:
            raise
        note(f"kind cluster {name}: its nodes could not be killed with {len(thawed)} cgroup(s) frozen "
              "inside them; thawed, deleting again")
        delete()


class KindClusterProvider(ContainerNodesProvider):
    kind = "kind"
    replace_keys = ("name", "nodeImage", "controlPlanes", "workers", "serviceAccountIssuer",
                    "serviceAccountSigningKeyFile", "extraPortMappings", "podSubnet", "serviceSubnet")

    def create_cluster(self, props: dict[str, Any]) -> str:
        workdir = _workdir(props["name"])
        config = workdir / "kind-config.yaml"
        config.write_text(yaml.safe_dump(kind_config(props), sort_keys=False))
        kubeconfig = workdir / "kubeconfig"
        cgroups.ensure_node_cgroups(note, may_mount=docker.may_prepare_cgroups())  # before any node exists
        # The images go in while kubeadm starts the control plane (infra/clusters/preload.py); one
        # missing from the local daemon fails here, before any node or route exists.
        # Images no workload runs (`lateImages`) go in beside the apply instead (infra/clusters/late_images.py).
        late = set(props.get("lateImages") or [])
        preloader = Preloader(lambda: node_containers(props["name"]),
                              whole(props["controlPlanes"]) + whole(props["workers"]),
                              [i for i in props.get("preloadImages") or [] if i not in late], note).start()
        if routes.routes_wanted():  # before any node exists: no early packet may leave the host
            routes.hold(_route_owner(props), _ranges(props), say=note)
        try:
            create_watching_kubelet(props["name"], "create", "cluster", "--name", props["name"], "--config",
                                    str(config), "--kubeconfig", str(kubeconfig), "--wait", "5m")
        except Exception:
            preloader.stop()
            if not self.cluster_exists(props):
                routes.release(_route_owner(props), say=note)
            raise
        preloader.finish()
        return kubeconfig.read_text()

    def node_containers(self, props: dict[str, Any]) -> list[str]:
        return node_containers(props["name"])

    def delete_cluster(self, props: dict[str, Any]) -> None:
        delete_kind_cluster(props["name"], lambda: kind_cli(
            "delete", "cluster", "--name", props["name"], "--kubeconfig",
            str(_workdir(props["name"]) / "kubeconfig"), timeout=300))
        routes.release(_route_owner(props), say=note)  # removed with the last cluster

    def cluster_exists(self, props: dict[str, Any]) -> bool:
        return props["name"] in kind_cli("get", "clusters").split()

    def adopt_cluster(self, props: dict[str, Any]) -> str:
        kubeconfig = kind_cli("get", "kubeconfig", "--name", props["name"])
        path = _workdir(props["name"]) / "kubeconfig"
        path.write_text(kubeconfig)
        path.chmod(0o600)
        return kubeconfig


class KindCluster(Cluster):
    """`workload_images`: the images the render's workloads run (`late_images.workload_images`);
    given, the preloaded images none of them runs are loaded beside the apply, not before it."""

    def __init__(self, name: str, config: KindClusterConfig, opts: pulumi.ResourceOptions | None = None,
                 workload_images: set[str] | None = None) -> None:
        super().__init__("kubeflow-stacks:clusters:KindCluster", name, None, opts)
        props = config.props()
        preload = list(props.get("preloadImages") or [])
        late = [] if workload_images is None else [i for i in preload if normalize(i) not in workload_images]
        if late:
            props["lateImages"] = late
        self.cluster = LocalClusterResource(KindClusterProvider(), f"{name}-kind", props,
                                            pulumi.ResourceOptions(parent=self), adopt=config.adopt)
        self._finish(name, self.cluster.kubeconfig, depends_on=[self.cluster], deleted_with=self.cluster)
        self.late_images: LateImagesResource | None = None
        if late:
            # Not a child of this component: a dependency on the component waits for every child,
            # and nothing must wait for these (the apply waits for the cluster through its provider).
            self.late_images = LateImagesResource(
                f"{name}-late-images", node_label(config.name), late,
                pulumi.ResourceOptions(depends_on=[self.cluster], deleted_with=self.cluster))

    @classmethod
    def from_config(cls, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None,
                    workload_images: set[str] | None = None) -> KindCluster:
        return cls(cfg.cluster.name, cluster_settings(cfg, KindClusterConfig), opts, workload_images)
