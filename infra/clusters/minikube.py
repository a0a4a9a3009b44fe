"""minikube: a local cluster made by the pinned `minikube` binary, one profile and one home per stack.

Each cluster gets its own MINIKUBE_HOME under the stack's working directory, so the user's
~/.minikube and ~/.kube are never read or written, and the kubeconfig embeds its certificates (it
works from any directory). Where this machine built them, the home is stocked first with the
toolchain's kubeadm, kubelet and kubectl and the preload of `kfstack nodeimage kicbase`: minikube
then downloads nothing. `--force` is passed only when a check would stop it for a reason that
does not apply here (root with the docker driver; a Kubernetes newer than minikube's list, which it
would look up on GitHub), and the stack's `skippedChecks` output names them. A profile of the
same name in any home (a node container labelled with that name) is someone else's: never touched.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pulumi

from infra.clusters import kubelet
from infra.clusters.base import Cluster, cluster_settings
from infra.clusters.local import ContainerNodesProvider, LocalClusterResource, note, whole
from infra.clusters.preload import Preloader
from infra.config import MinikubeClusterConfig, MinikubeSettings, StackConfig
from infra.paths import clusters_dir
from infra.runtime import cgroups, docker, routes
from infra.settings.cluster import CONTAINER_DRIVERS
from infra.settings.fields import ConfigError, Problem
from infra.versions import VERSIONS_FILE
from smoke_tests.run import run

CREATE_TIMEOUT_S = 1200
# minikube's defaults: the service range kubeadm gets, and the bridge CNI's pod range.
SERVICE_RANGE = "10.96.0.0/12"
POD_RANGE = "10.244.0.0/16"
PROFILE_LABEL = "name.minikube.sigs.k8s.io"


def newest_kubernetes() -> str:
    """The newest Kubernetes the pinned minikube knows without asking GitHub ([minikube] pin)."""
    return str(tomllib.loads(VERSIONS_FILE.read_text())["minikube"]["newest_kubernetes"])


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.lstrip("v").split("."))


def skipped_checks(props: dict[str, Any], *, euid: int, newest: str) -> list[str]:
    """The minikube checks `--force` skips for these inputs on this host, each with why it may."""
    skipped = []
    if euid == 0 and props.get("driver") in CONTAINER_DRIVERS:
        skipped.append(f"DRV_AS_ROOT: the {props['driver']} driver run as root, which minikube refuses unless "
                       "forced")
    if "kubernetesVersion" in props and _version(props["kubernetesVersion"]) > _version(newest):
        skipped.append(f"K8S_VERSION: Kubernetes {props['kubernetesVersion']} is newer than minikube's list "
                       f"(up to {newest}), which it would check on GitHub")
    return skipped


def minikube_start_args(props: dict[str, Any], *, force: bool = False, local_preload: bool = False) -> list[str]:
    args = ["start", "--profile", props["name"], "--driver", props["driver"],
            "--cpus", str(whole(props["cpus"])), "--memory", props["memory"], "--disk-size", props["disk"],
            "--kubernetes-version", props["kubernetesVersion"], "--wait", "all", "--embed-certs"]
    if props.get("baseImage"):
        args += ["--base-image", props["baseImage"]]
    if props.get("containerRuntime"):
        args += ["--container-runtime", props["containerRuntime"]]
    if props.get("cni") and props["cni"] != "auto":
        args += ["--cni", props["cni"]]
    if local_preload:  # every image is in the preload: nothing to cache on the host
        args.append("--cache-images=false")
    if force:
        args.append("--force")
    return args


def cpu_problem(settings: MinikubeSettings, cores: int | None) -> Problem | None:
    """More CPUs than the container runtime has: minikube would stop after creating its network."""
    if settings.driver not in CONTAINER_DRIVERS or cores is None or settings.cpus <= cores:
        return None
    return Problem("cluster.minikube.cpus", settings.cpus,
                   f"the {settings.driver} driver's node can use at most the {cores} cores this machine's "
                   f"container runtime has: set it to {cores} or fewer (pulumi config set --path "
                   f"cluster.minikube.cpus {cores})")


def runtime_cores(driver: str) -> int | None:
    """Cores of the runtime the node runs on (docker info's NCPU, as minikube reads), else the host's."""
    if driver == "docker":
        cores = (docker.server_info() or {}).get("NCPU")
        if isinstance(cores, int):
            return cores
    return os.cpu_count()


def _workdir(props: dict[str, Any]) -> Path:
    workdir = clusters_dir() / f"minikube-{props['name']}"
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def minikube_home(props: dict[str, Any]) -> Path:
    """This cluster's MINIKUBE_HOME (minikube keeps its files in `<home>/.minikube`); not created here."""
    return clusters_dir() / f"minikube-{props['name']}" / "home"


def _env(props: dict[str, Any]) -> dict[str, str]:
    from infra.toolchain import tools_env

    return {**tools_env(), "KUBECONFIG": str(_workdir(props) / "kubeconfig"),
            "MINIKUBE_HOME": str(minikube_home(props)), "MINIKUBE_EMBED_CERTS": "true",
            "MINIKUBE_WANTUPDATENOTIFICATION": "false", "MINIKUBE_IN_STYLE": "false"}


def _minikube(props: dict[str, Any], *args: str, timeout: float = 300) -> str:
    from infra.toolchain import tool_path

    return run([tool_path("minikube"), *args], timeout=timeout, env=_env(props)).stdout


def _link(source: Path, dest: Path) -> None:
    """`dest` as a hard link to `source` (a copy across file systems); kept when already there."""
    if dest.exists():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def stock_home(props: dict[str, Any]) -> bool:
    """Put into the cluster's home what this machine built for it, so minikube downloads nothing:
    kubeadm, kubelet and kubectl (when the toolchain's Kubernetes is the stack's version) and the
    preload (`kfstack nodeimage kicbase`). True when the preload is there."""
    from infra.nodeimage.kicbase import kubernetes_binaries, preload_path
    from infra.toolchain.model import load_toolchain

    cache = minikube_home(props) / ".minikube" / "cache"
    version = props["kubernetesVersion"]
    if load_toolchain().get("kubernetes").version == version:
        for name, path in kubernetes_binaries().items():
            _link(path, cache / "linux" / "amd64" / version / name)
    preload = preload_path(version, props.get("containerRuntime") or "containerd")
    if not preload.exists():
        return False
    _link(preload, cache / "preloaded-tarball" / preload.name)
    return True


def _route_owner(props: dict[str, Any]) -> str:
    return f"minikube:{props['name']}"


def kubelet_started(node: str) -> None:
    """Raises CommandError until minikube has started kubelet in node container `node`."""
    run(["docker", "exec", node, "systemctl", "is-active", "--quiet", "kubelet"], timeout=30)


def profile_containers(name: str) -> list[str]:
    """Node containers of a minikube profile of this name, made from any home."""
    if docker.docker_cli() is None:
        return []
    proc = run(["docker", "ps", "-aq", "--filter", f"label={PROFILE_LABEL}={name}"], timeout=60, check=False)
    return proc.stdout.split() if proc.returncode == 0 else []


class MinikubeClusterProvider(ContainerNodesProvider):
    kind = "minikube"
    # minikube cannot resize a cluster or change its driver, version, image, runtime or CNI in place.
    replace_keys = ("name", "driver", "cpus", "memory", "disk", "kubernetesVersion", "baseImage",
                    "containerRuntime", "cni")

    def extra_outputs(self, props: dict[str, Any]) -> dict[str, Any]:
        return {"skippedChecks": skipped_checks(props, euid=os.geteuid(), newest=newest_kubernetes())}

    def create_cluster(self, props: dict[str, Any]) -> str:
        from infra.toolchain import tool_path

        # minikube's node runs systemd and kubelet as kind's does: the same host needs, the same fast failure.
        cgroups.ensure_node_cgroups(note, may_mount=docker.may_prepare_cgroups())
        local_preload = stock_home(props)
        skipped = self.extra_outputs(props)["skippedChecks"]
        for reason in skipped:
            note(f"minikube {props['name']}: --force skips {reason}")
        # The images go in while kubeadm starts the control plane: once kubelet runs, minikube has
        # restarted the node's containerd for the last time (its runtime set-up and preload come
        # first). One missing from the local daemon fails here, before any node or route exists.
        preloader = Preloader(lambda: profile_containers(props["name"]), 1, list(props.get("preloadImages") or []),
                              note, ready=kubelet_started).start()
        if routes.routes_wanted():  # before the node exists: no early packet may leave the host
            routes.hold(_route_owner(props), [SERVICE_RANGE, POD_RANGE], say=note)
        args = minikube_start_args(props, force=bool(skipped), local_preload=local_preload)
        label = f"{PROFILE_LABEL}={props['name']}"
        try:
            kubelet.run_watching_kubelet(
                [tool_path("minikube"), *args], timeout=CREATE_TIMEOUT_S, env=_env(props),
                nodes=lambda: kubelet.running_containers(label),
                diagnostics=_workdir(props) / "kubelet-journal.txt")
        except Exception:
            preloader.stop()
            if not self.cluster_exists(props):
                routes.release(_route_owner(props), say=note)
            raise
        preloader.finish()
        return (_workdir(props) / "kubeconfig").read_text()

    def node_containers(self, props: dict[str, Any]) -> list[str]:
        return profile_containers(props["name"])

    def delete_cluster(self, props: dict[str, Any]) -> None:
        _minikube(props, "delete", "--profile", props["name"])
        routes.release(_route_owner(props), say=note)  # removed with the last cluster holding it
        # The home was this cluster's alone: its CA and keys go with it (the cache links cost nothing).
        shutil.rmtree(minikube_home(props), ignore_errors=True)

    def adopt_cluster(self, props: dict[str, Any]) -> str:
        # Writes the profile's context into the stack's own kubeconfig, never the user's.
        _minikube(props, "update-context", "--profile", props["name"])
        return (_workdir(props) / "kubeconfig").read_text()

    def cluster_exists(self, props: dict[str, Any]) -> bool:
        """A profile of this name in the stack's home, or a node container of it from any home."""
        config = minikube_home(props) / ".minikube" / "profiles" / props["name"] / "config.json"
        return config.exists() or bool(profile_containers(props["name"]))


class MinikubeCluster(Cluster):
    def __init__(self, name: str, config: MinikubeClusterConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kubeflow-stacks:clusters:MinikubeCluster", name, None, opts)
        self.cluster = LocalClusterResource(MinikubeClusterProvider(), f"{name}-minikube", config.props(),
                                            pulumi.ResourceOptions(parent=self), adopt=config.adopt,
                                            outputs=("skippedChecks",))
        self.outputs = {"skippedChecks": self.cluster.skippedChecks}  # type: ignore[attr-defined]
        self._finish(name, self.cluster.kubeconfig, depends_on=[self.cluster], deleted_with=self.cluster)

    @classmethod
    def from_config(cls, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None,
                    workload_images: set[str] | None = None) -> MinikubeCluster:
        config = cluster_settings(cfg, MinikubeClusterConfig)
        problem = cpu_problem(config.minikube, runtime_cores(config.minikube.driver))
        if problem is not None:  # before anything is created
            raise ConfigError([problem])
        return cls(cfg.cluster.name, config, opts)
