"""The simulated cluster: KWOK with kwokctl's binary runtime and the pinned local binaries.

Real etcd, kube-apiserver, controller manager and scheduler; nodes and pod lifecycles are
simulated by kwok, so Deployments become available and Jobs complete without any image.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pulumi

from infra.clusters.base import Cluster, cluster_settings
from infra.clusters.local import LocalClusterProvider, LocalClusterResource, whole
from infra.config import SimClusterConfig, StackConfig
from infra.paths import clusters_dir
from smoke_tests.run import run

CREATE_TIMEOUT_S = 300


def sim_workdir(name: str) -> Path:
    return clusters_dir() / f"sim-{name}"


def _kwokctl(name: str, *args: str, timeout: float = CREATE_TIMEOUT_S) -> str:
    from infra.toolchain import tool_path, tools_env

    workdir = sim_workdir(name)
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**tools_env(), "KWOK_WORKDIR": str(workdir)}
    return run([tool_path("kwokctl"), "--name", name, *args], timeout=timeout, env=env).stdout


class SimClusterProvider(LocalClusterProvider):
    kind = "sim"
    # Node shape changes are applied in place by re-scaling; only the name forces a new cluster.
    replace_keys = ("name",)

    def create_cluster(self, props: dict[str, Any]) -> str:
        from infra.toolchain import tool_path

        name = props["name"]
        kubeconfig = sim_workdir(name) / "kubeconfig"
        binaries = {f"--{flag}-binary": str(tool_path(tool)) for flag, tool in (
            ("kube-apiserver", "kube-apiserver"), ("kube-controller-manager", "kube-controller-manager"),
            ("kube-scheduler", "kube-scheduler"), ("etcd", "etcd"), ("kwok-controller", "kwok"))}
        args = ["create", "cluster", "--runtime", "binary", "--kubeconfig", str(kubeconfig),
                "--wait", "2m"]
        for flag, path in binaries.items():
            args += [flag, path]
        _kwokctl(name, *args)
        self._scale(props)
        return kubeconfig.read_text()

    def adopt_cluster(self, props: dict[str, Any]) -> str:
        """A cluster this stack's interrupted create left (or one handed over with `adopt`)."""
        _kwokctl(props["name"], "start", "cluster", timeout=120)
        self._scale(props)
        return (sim_workdir(props["name"]) / "kubeconfig").read_text()

    def _scale(self, props: dict[str, Any]) -> None:
        _kwokctl(props["name"], "scale", "node", "--replicas", str(whole(props["nodes"])),
                 "--param", f'.allocatable.cpu="{props["nodeCpu"]}"',
                 "--param", f'.allocatable.memory="{props["nodeMemory"]}"',
                 "--param", f'.allocatable.pods="{whole(props["nodePods"])}"', timeout=120)

    def update_cluster(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._scale(new)

    def delete_cluster(self, props: dict[str, Any]) -> None:
        name = props["name"]
        _kwokctl(name, "delete", "cluster", "--kubeconfig", str(sim_workdir(name) / "kubeconfig"),
                 timeout=120)
        shutil.rmtree(sim_workdir(name), ignore_errors=True)  # what kwokctl leaves: a kubeconfig stub

    def cluster_exists(self, props: dict[str, Any]) -> bool:
        # Each cluster lives in its own KWOK_WORKDIR: no directory, no cluster.
        if not sim_workdir(props["name"]).is_dir():
            return False
        return props["name"] in _kwokctl(props["name"], "get", "clusters", timeout=60).split()


class SimCluster(Cluster):
    """A KWOK cluster whose lifecycle Pulumi owns: `pulumi destroy` deletes it."""

    def __init__(self, name: str, config: SimClusterConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kubeflow-stacks:clusters:SimCluster", name, None, opts)
        self.cluster = LocalClusterResource(SimClusterProvider(), f"{name}-kwok", config.props(),
                                            pulumi.ResourceOptions(parent=self), adopt=config.adopt)
        self._finish(name, self.cluster.kubeconfig, depends_on=[self.cluster], deleted_with=self.cluster)

    @classmethod
    def from_config(cls, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None,
                    workload_images: set[str] | None = None) -> SimCluster:
        return cls(cfg.cluster.name, cluster_settings(cfg, SimClusterConfig), opts)
