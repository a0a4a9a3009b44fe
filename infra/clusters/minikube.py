"""minikube: a local cluster made by the pinned `minikube` binary, one profile per stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi

from infra.clusters import kubelet
from infra.clusters.base import Cluster, cluster_settings
from infra.clusters.local import LocalClusterProvider, LocalClusterResource, note, whole
from infra.config import MinikubeClusterConfig, StackConfig
from infra.paths import clusters_dir
from infra.runtime import cgroups, docker
from smoke_tests.run import run

CREATE_TIMEOUT_S = 1200




def minikube_start_args(props: dict[str, Any]) -> list[str]:
    return ["start", "--profile", props["name"], "--driver", props["driver"],
            "--cpus", str(whole(props["cpus"])), "--memory", props["memory"], "--disk-size", props["disk"],
            "--kubernetes-version", props["kubernetesVersion"], "--wait", "all"]


def _workdir(props: dict[str, Any]) -> Path:
    workdir = clusters_dir() / f"minikube-{props['name']}"
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def _env(props: dict[str, Any]) -> dict[str, str]:
    from infra.toolchain import tools_env

    return {**tools_env(), "KUBECONFIG": str(_workdir(props) / "kubeconfig")}


def _minikube(props: dict[str, Any], *args: str, timeout: float = 300) -> str:
    from infra.toolchain import tool_path

    return run([tool_path("minikube"), *args], timeout=timeout, env=_env(props)).stdout


class MinikubeClusterProvider(LocalClusterProvider):
    kind = "minikube"
    # minikube cannot resize a cluster or change its driver or version in place.
    replace_keys = ("name", "driver", "cpus", "memory", "disk", "kubernetesVersion")

    def create_cluster(self, props: dict[str, Any]) -> str:
        from infra.toolchain import tool_path

        # minikube's node runs systemd and kubelet as kind's does: the same host needs, the same fast failure.
        cgroups.ensure_node_cgroups(note, may_mount=docker.may_prepare_cgroups())
        kubelet.run_watching_kubelet(
            [tool_path("minikube"), *minikube_start_args(props)], timeout=CREATE_TIMEOUT_S, env=_env(props),
            nodes=lambda: kubelet.running_containers(f"name.minikube.sigs.k8s.io={props['name']}"),
            diagnostics=_workdir(props) / "kubelet-journal.txt")
        return (clusters_dir() / f"minikube-{props['name']}" / "kubeconfig").read_text()

    def delete_cluster(self, props: dict[str, Any]) -> None:
        _minikube(props, "delete", "--profile", props["name"])

    def adopt_cluster(self, props: dict[str, Any]) -> str:
        # Writes the profile's context into the stack's own kubeconfig, never the user's.
        _minikube(props, "update-context", "--profile", props["name"])
        return (clusters_dir() / f"minikube-{props['name']}" / "kubeconfig").read_text()

    def cluster_exists(self, props: dict[str, Any]) -> bool:
        out = _minikube(props, "profile", "list", "--output", "json")
        return f'"Name":"{props["name"]}"' in out.replace(" ", "")


class MinikubeCluster(Cluster):
    def __init__(self, name: str, config: MinikubeClusterConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kubeflow-stacks:clusters:MinikubeCluster", name, None, opts)
        self.cluster = LocalClusterResource(MinikubeClusterProvider(), f"{name}-minikube", config.props(),
                                            pulumi.ResourceOptions(parent=self), adopt=config.adopt)
        self._finish(name, self.cluster.kubeconfig, depends_on=[self.cluster], deleted_with=self.cluster)

    @classmethod
    def from_config(cls, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None) -> MinikubeCluster:
        return cls(cfg.cluster.name, cluster_settings(cfg, MinikubeClusterConfig), opts)
