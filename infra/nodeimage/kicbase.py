"""The source route for minikube's node: a kicbase-compatible image and a preload, built here.

minikube's docker driver starts its node from a "kicbase" image and fills the node's /var with a
preload tarball (an lz4 tar of /var/lib/containerd holding the Kubernetes images). Upstream
publishes both ([minikube] in versions.toml names the image); here both are made from what the kind
node image is made from (`build`), so one build of the Kubernetes images serves both:

  rootfs       the node image's Debian rootfs plus sshd, sudo, Debian's containerd and CNI plugins
  kicbase      that root with minikube's deploy/kicbase files (from its Go module), the same systemd
               trimming as kind's base, the runc shim, crictl, and the two fixes Debian needs: the
               `docker` account unlocked for sshd (UsePAM is off), and sshd's session PATH with the
               sbin directories (kubeadm's preflight looks for losetup there)
  storage-provisioner  minikube's addon with leader election off (storageprov/main.go)
  preload      the node image's Kubernetes image tars plus the addon's, imported into the kicbase
               image's containerd, under the names kubeadm and minikube ask for

Each step is cached by its inputs and printed with its time (`steps.StepLog`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from infra.nodeimage.build import (
    Build,
    NodeImageError,
    Say,
    _import_images,
    _install,
    bin_of,
    docker,
    docker_cli,
    image_from_root,
    image_key,
    replacing,
    trim_systemd,
)
from infra.nodeimage.kindsrc import kind_sources, module_dir
from infra.nodeimage.pins import load_pins
from infra.nodeimage.steps import StepLog, digest, file_digest, nodeimage_dir
from infra.runtime import shim
from infra.toolchain import install as installer
from infra.toolchain import store
from infra.toolchain.gobuild import go_binary, go_env, wrapper_gomod
from infra.toolchain.model import Tool, load_toolchain
from infra.versions import VERSIONS_FILE
from smoke_tests.run import CommandError, run

STORAGEPROV_SOURCE = Path(__file__).with_name("storageprov")
SSHD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class KicbasePins:
    tag: str
    packages: tuple[str, ...]
    aliases: dict[str, str]
    storage_provisioner: str
    preload_version: str
    newest_kubernetes: str
    minikube: Tool


def load_kicbase_pins(path: Path = VERSIONS_FILE) -> KicbasePins:
    table = tomllib.loads(path.read_text())["minikube"]
    minikube = load_toolchain().get("minikube")
    return KicbasePins(tag=str(table["tag"]).format(minikube=minikube.version), packages=tuple(table["packages"]),
                       aliases=dict(table["aliases"]), storage_provisioner=str(table["storage_provisioner"]),
                       preload_version=str(table["preload_version"]),
                       newest_kubernetes=str(table["newest_kubernetes"]), minikube=minikube)


def preload_name(preload_version: str, kubernetes: str, runtime: str = "containerd", arch: str = "amd64") -> str:
    """minikube's preload file name (download.TarballName): it finds a local one by this name alone."""
    storage = "overlay" if runtime == "cri-o" else "overlay2"
    return f"preloaded-images-k8s-{preload_version}-{kubernetes}-{runtime}-{storage}-{arch}.tar.lz4"


def preload_path(kubernetes: str, runtime: str = "containerd") -> Path:
    """Where the source route keeps the preload for `kubernetes` (stacks link it into their home)."""
    return nodeimage_dir() / "minikube-preload" / preload_name(load_kicbase_pins().preload_version, kubernetes,
                                                               runtime)


def apply_kicbase(root: Path, files: Path) -> None:
    """What minikube's deploy/kicbase/Dockerfile does to its Ubuntu root that a containerd node
    needs, done to the Debian root (no docker-ce, cri-dockerd, cri-o, podman or buildkit)."""
    for name in ("10-network-security.conf", "11-tcp-mtu-probing.conf"):
        _install(files / name, root / "etc/sysctl.d" / name, 0o644)
    _install(files / "containerd.toml", root / "etc/containerd/config.toml", 0o644)
    _install(files / "containerd_docker_io_hosts.toml", root / "etc/containerd/certs.d/docker.io/hosts.toml", 0o644)
    _install(files / "entrypoint", root / "usr/local/bin/entrypoint")
    trim_systemd(root)
    timer = root / "usr/lib/systemd/system/systemd-tmpfiles-clean.timer"
    if timer.exists():
        timer.write_text("\n".join("OnBootSec=1min" if line.startswith("OnBootSec=") else line
                                   for line in timer.read_text().splitlines()) + "\n")
    nsswitch = root / "etc/nsswitch.conf"  # minikube writes node names into /etc/hosts and reads them first
    nsswitch.write_text("\n".join("hosts:          files dns" if line.startswith("hosts:") else line
                                  for line in nsswitch.read_text().splitlines()) + "\n")
    # minikube restarts containerd itself; sshd is how it runs every command in the node.
    run(["systemctl", f"--root={root}", "enable", "ssh.service", "containerd.service"], timeout=60)
    sshd = root / "etc/ssh/sshd_config"
    text = sshd.read_text().replace("\nUsePAM yes", "\n#UsePAM yes")
    # Debian's sshd gives a user's session no sbin directories (Ubuntu's /etc/environment has them).
    if f"SetEnv PATH={SSHD_PATH}" not in text:
        text += f"SetEnv PATH={SSHD_PATH}\n"
    sshd.write_text(text)
    (root / "var/run/sshd").mkdir(parents=True, exist_ok=True)
    # User `docker` with passwordless sudo, as kicbase. Debian's disabled password is `!`, a locked
    # account that sshd refuses without PAM: `*` has no password and is not locked.
    run(["chroot", str(root), "sh", "-c", "getent group docker >/dev/null || groupadd --system docker; "
         "id docker >/dev/null 2>&1 || useradd --create-home --gid docker --groups sudo --shell /bin/bash docker; "
         "usermod -p '*' docker; install -d -o docker -g docker -m 700 /home/docker/.ssh"], timeout=60)
    sudoers = root / "etc/sudoers"
    if "%sudo ALL=(ALL) NOPASSWD:ALL" not in sudoers.read_text():
        sudoers.write_text(sudoers.read_text() + "%sudo ALL=(ALL) NOPASSWD:ALL\n")
    # minikube's CNI configs name plugins in /opt/cni/bin; Debian installs them in /usr/lib/cni.
    (root / "opt/cni/bin").mkdir(parents=True, exist_ok=True)
    for plugin in sorted((root / "usr/lib/cni").iterdir()):
        link = root / "opt/cni/bin" / plugin.name
        link.unlink(missing_ok=True)
        link.symlink_to(f"/usr/lib/cni/{plugin.name}")
    for directory in ("etc/kubernetes/manifests", "kind/images"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    for junk in ("usr/share/doc", "usr/share/man"):
        shutil.rmtree(root / junk, ignore_errors=True)


@dataclass
class KicbaseBuild:
    """The steps of the kicbase source route, on top of the node image's `Build`."""

    build: Build
    pins: KicbasePins

    def base(self, rootfs: Path) -> str:
        files = module_dir("k8s.io/minikube", self.pins.minikube.version) / "deploy" / "kicbase"
        shim_bin = shim.build_shim(lambda line: None)
        crictl = bin_of(self.build.pins, "crictl")
        key = digest({"rootfs": self.build.keys["kicbase rootfs"], "minikube": self.pins.minikube.version,
                      "files": {p.name: file_digest(p) for p in sorted(files.iterdir()) if p.is_file()},
                      "shim": shim_bin.parent.parent.name, "crictl": file_digest(crictl), "layout": 1})
        tag = self.pins.tag

        def build() -> None:
            with tempfile.TemporaryDirectory(dir=nodeimage_dir()) as tmp:
                root = Path(tmp) / "root"
                run(["cp", "-a", str(rootfs), str(root)], timeout=600)
                (root / ".kfstack-rootfs.json").unlink(missing_ok=True)
                apply_kicbase(root, files)
                _install(shim_bin, root / "usr/local/sbin/runc")  # in front of Debian's /usr/sbin/runc
                _install(crictl, root / "usr/local/bin/crictl")
                image_from_root(root, tag, key, Path(tmp), env={"PATH": SSHD_PATH})

        self.build.log.run("kicbase image", key, lambda: image_key(tag) == key, replacing(tag, build))
        self.build.keys["kicbase"] = key
        return tag

    def storage_provisioner(self) -> None:
        """The addon's binary, built in minikube's wrapper module, and its image (FROM scratch upstream)."""
        tool = self.pins.minikube
        route = tool.module
        if route is None:
            raise NodeImageError("[tools.minikube] has no module route to build storage-provisioner in")
        gomod = wrapper_gomod(tool, route)
        main = STORAGEPROV_SOURCE / "main.go"
        key = digest({"go.mod": gomod, "main.go": file_digest(main)})
        out = nodeimage_dir() / "bin" / f"storage-provisioner-{key}"

        def build() -> None:
            work = nodeimage_dir() / "build" / f"storageprov-{os.getpid()}"
            shutil.rmtree(work, ignore_errors=True)
            (work / "storageprov").mkdir(parents=True)
            (work / "go.mod").write_text(gomod)
            shutil.copyfile(main, work / "storageprov" / "main.go")
            env = {**go_env(route.gonosumdb, static=True), "GOMAXPROCS": os.environ.get("GOMAXPROCS", "2")}
            try:
                requires = [tool.expand(r).replace(" ", "@") for r in route.require]
                run([go_binary(), "get", *requires], cwd=work, env=env, timeout=1200)
                run([go_binary(), "build", "-ldflags", "-s -w", "-o", str(out), "./storageprov"], cwd=work, env=env,
                    timeout=3600)
            except CommandError as exc:
                raise NodeImageError(f"building storage-provisioner failed:\n{exc}") from None
            finally:
                shutil.rmtree(work, ignore_errors=True)

        self.build.log.run("storage-provisioner", key, out.exists, build)
        self.build.mini_image(self.pins.storage_provisioner, {"storage-provisioner": out}, ["/storage-provisioner"],
                              "")

    def preload(self, base: str, excluded: set[str]) -> Path:
        tars = {t: p for t, p in self.build.image_tars.items() if t not in excluded}
        key = digest({"kicbase": self.build.keys["kicbase"], "aliases": self.pins.aliases,
                      "images": {t: self.build.keys[f"image {t}"] for t in tars}, "layout": 1})
        out = preload_path(self.build.pins.kubernetes)
        stamp = out.with_name(out.name + ".inputs")

        def build() -> None:
            name = f"kfstack-preload-build-{os.getpid()}"
            docker("run", "-d", "--name", name, "--entrypoint", "sleep", "--security-opt", "seccomp=unconfined",
                   base, "infinity", timeout=120)
            try:
                _import_images(name, tars, label_on_import=False)  # Debian's ctr 1.6
                run([docker_cli(), "exec", "-d", name, "sh", "-c", "containerd > /tmp/containerd.log 2>&1"],
                    timeout=60)
                for alias, source in self.pins.aliases.items():
                    docker("exec", name, "sh", "-c", f"until ctr version >/dev/null 2>&1; do sleep 0.5; done; "
                           f"ctr -n k8s.io images tag {source} {alias} && "
                           f"ctr -n k8s.io images label {alias} io.cri-containerd.pinned=pinned", timeout=120)
                docker("exec", name, "sh", "-c", "pkill containerd; while pgrep -x containerd >/dev/null; "
                       "do sleep 0.5; done; rm -f /tmp/containerd.log", timeout=120)
                out.parent.mkdir(parents=True, exist_ok=True)
                tmp = out.with_name(f".{out.name}.{os.getpid()}")
                docker("exec", name, "sh", "-c", "tar -C /var -cf - ./lib/containerd | lz4 -q -c > /preload.tar.lz4",
                       timeout=1800)
                docker("cp", f"{name}:/preload.tar.lz4", str(tmp), timeout=1800)
                tmp.rename(out)
                stamp.write_text(key + "\n")
            finally:
                run([docker_cli(), "rm", "-f", "-v", name], timeout=120, check=False)

        def done() -> bool:
            return out.exists() and stamp.exists() and stamp.read_text().strip() == key

        self.build.log.run("preload", key, done, build)
        return out


@dataclass(frozen=True)
class KicbaseResult:
    tag: str
    preload: Path
    kubernetes: str
    summary: str
    seconds: float


def build_kicbase(*, say: Say = print, sources: Path | None = None) -> KicbaseResult:
    """Build (or find cached) the kicbase image and the preload for the pinned Kubernetes."""
    start = time.monotonic()
    node_pins = load_pins()
    pins = load_kicbase_pins()
    build = Build(pins=node_pins, log=StepLog(say), sources=sources or installer.sources_dir(None))
    say(f"kicbase {pins.tag} (minikube {pins.minikube.version}) and its preload for Kubernetes "
        f"{node_pins.kubernetes}: source route")
    build.tools()
    kind = kind_sources(node_pins.tools["kind"].version)
    pause = build.pause()
    node_rootfs = build.rootfs()
    build.images(node_rootfs, pause, kind)  # the node image's own image tars (cached when it is built)
    steps = KicbaseBuild(build, pins)
    kic_root = build.rootfs(pins.packages, "kicbase rootfs")
    base = steps.base(kic_root)
    steps.storage_provisioner()
    preload = steps.preload(base, excluded=set(kind.storage_images.values()))
    seconds = time.monotonic() - start
    record = {"tag": base, "key": build.keys["kicbase"], "preload": str(preload), "kubernetes": node_pins.kubernetes,
              "minikube": pins.minikube.version, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "steps": build.log.entries}
    (nodeimage_dir() / "kicbase.json").write_text(json.dumps(record, indent=2) + "\n")
    summary = build.log.summary()
    say(f"kicbase {base} and preload {preload.name}: ready ({summary}; {seconds:.0f}s)")
    return KicbaseResult(base, preload, node_pins.kubernetes, summary, seconds)


def kubernetes_binaries() -> dict[str, Path]:
    """kubeadm, kubelet and kubectl of the toolchain's Kubernetes, when installed (minikube copies
    them into the node from its cache instead of downloading them)."""
    tool = load_toolchain().get("kubernetes")
    found = {b: store.bin_dir(tool) / b for b in ("kubeadm", "kubelet", "kubectl")}
    return found if all(p.is_file() for p in found.values()) else {}
