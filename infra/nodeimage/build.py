"""The source route: a kind node image built on this machine, step by cached step.

Steps, each keyed by its inputs (see `steps`):
  tools        the toolchain's static Kubernetes set, etcd, containerd, CNI plugins, crictl,
               CoreDNS and local-path-provisioner ([tools.*] in versions.toml)
  pause        Kubernetes' own pause.c, compiled static with the host's C compiler
  rootfs       a Debian rootfs by debootstrap (the packages kind's base image installs)
  base image   the rootfs with kind's base-image files, containerd, the runc shim, as an image
  images       every image kubeadm and kind ask for, under its upstream name, from those binaries
  node image   what `kind build node-image` does, minus the registry pulls: the base image with
               kubeadm, kubelet, kubectl, crictl, the CNI plugins and every image pre-imported

kindnetd cannot be built here, so the node carries a static ptp CNI config (single-node clusters).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from infra.nodeimage.kindsrc import KindSources, kind_sources, module_dir
from infra.nodeimage.pins import NODE_TOOLS, NodeImagePins, load_pins
from infra.nodeimage.steps import StepLog, digest, file_digest, nodeimage_dir
from infra.runtime import shim
from infra.toolchain import install as installer
from infra.toolchain import store
from smoke_tests.run import CommandError, run
from smoke_tests.wait import wait_until

Say = Callable[[str], None]
KEY_LABEL = "io.kfstack.inputs"
CNI_BINARIES = ("host-local", "loopback", "ptp", "portmap", "bridge")
DOCKER_TIMEOUT = 900.0


class NodeImageError(RuntimeError):
    """A build step failed; the message names the step and what to do."""


def docker_cli() -> str:
    found = shutil.which("docker")
    if found is None:
        raise NodeImageError("building the node image needs Docker: ./scripts/setup installs it (root, Debian), "
                             "then `kfstack runtime start`")
    return found


def docker(*args: str, timeout: float = DOCKER_TIMEOUT) -> str:
    return run([docker_cli(), *args], timeout=timeout).stdout


def image_key(tag: str) -> str | None:
    """The inputs digest recorded on a local image, or None when the image is not here."""
    proc = run([docker_cli(), "image", "inspect", "--format", f'{{{{index .Config.Labels "{KEY_LABEL}"}}}}', tag],
               timeout=60, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def image_id(tag: str) -> str | None:
    proc = run([docker_cli(), "image", "inspect", "--format", "{{.Id}}", tag], timeout=60, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def replacing(tag: str, build: Callable[[], None]) -> Callable[[], None]:
    """`build` (which tags a new image as `tag`), then remove the image it superseded when that was
    the project's (labelled) and is now untagged; one still used by a container stays."""
    def run_build() -> None:
        old = image_id(tag)
        old_key = image_key(tag) if old else None
        build()
        if old and old_key and image_id(tag) != old:
            dangling = docker("images", "-q", "--no-trunc", "-f", "dangling=true").split()
            if old in dangling:
                run([docker_cli(), "rmi", old], timeout=120, check=False)

    return run_build


def bin_of(pins: NodeImagePins, binary: str) -> Path:
    """A binary of one of the node tools (installed by the tools step)."""
    for tool in pins.tools.values():
        if binary in tool.binaries:
            return store.bin_dir(tool) / binary
    raise NodeImageError(f"no node tool provides {binary}")


def is_static(path: Path) -> bool:
    """True for an ELF file without a program interpreter (runs in an image with no libc)."""
    data = path.read_bytes()[:65536]
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit ELF only
        return False
    phoff = int.from_bytes(data[32:40], "little")
    size, count = int.from_bytes(data[54:56], "little"), int.from_bytes(data[56:58], "little")
    return all(int.from_bytes(data[phoff + i * size:phoff + i * size + 4], "little") != 3  # PT_INTERP
               for i in range(count))


@dataclass
class Build:
    """One build's context: pins, the step log and the keys of what it produced."""

    pins: NodeImagePins
    log: StepLog
    sources: Path | None = None
    keys: dict[str, str] = field(default_factory=dict)
    image_tars: dict[str, Path] = field(default_factory=dict)

    @property
    def say(self) -> Say:
        return self.log.say

    # --- binaries ---------------------------------------------------------------------------------

    def tools(self) -> None:
        """Install (or find) every node tool through the toolchain; each is cached by version."""
        for name in NODE_TOOLS:
            tool = self.pins.tools[name]
            start = time.monotonic()
            outcome = installer.install_tool(tool, sources=self.sources, say=lambda line: None)
            seconds = time.monotonic() - start
            state = "built" if outcome.status == "installed" else "cached"
            self.log.entries.append((f"tool {name}", state, seconds))
            self.say(f"  tool {name} {tool.version}: {state} ({outcome.route} route, {seconds:.1f}s)")
        for binary in ("kubeadm", "kubelet", "kubectl", "kube-proxy", "kube-apiserver", "etcd", "containerd",
                       "coredns", "crictl", "local-path-provisioner", *CNI_BINARIES):
            if not is_static(bin_of(self.pins, binary)):
                raise NodeImageError(f"{bin_of(self.pins, binary)} is not a static binary (an install from before "
                                     f"the toolchain built it static): `kfstack tools install --force "
                                     f"{installer.load_toolchain().get(binary).name}`")

    def pause(self) -> Path:
        k8s = self.pins.tools["kubernetes"]
        source = module_dir("k8s.io/kubernetes", k8s.version) / "build" / "pause" / "linux" / "pause.c"
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            raise NodeImageError("the pause image is compiled from Kubernetes' pause.c: install gcc "
                                 "(apt-get install gcc libc6-dev)")
        key = digest({"pause": self.pins.pause, "source": file_digest(source)})
        out = nodeimage_dir() / "bin" / f"pause-{key}"

        def build() -> None:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.{os.getpid()}")
            run([cc, "-Os", "-static", f"-DVERSION=v{self.pins.pause}", "-o", str(tmp), str(source)], timeout=300)
            run(["strip", str(tmp)], timeout=60, check=False)
            tmp.rename(out)

        self.log.run("pause", key, out.exists, build)
        self.keys["pause"] = key
        return out

    # --- root file system and base image ----------------------------------------------------------

    def mirror(self) -> str:
        if self.pins.debian_mirror:
            return self.pins.debian_mirror
        for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
            try:
                text = path.read_text()
            except OSError:
                continue
            found = re.search(r"(?:^deb\s+|^URIs:\s*)(\S*debian\S*)", text, re.MULTILINE)
            if found and "security" not in found.group(1):
                return found.group(1)
        return "http://deb.debian.org/debian"

    def rootfs(self) -> Path:
        mirror = self.mirror()
        inputs = {"suite": self.pins.debian_suite, "mirror": mirror, "packages": sorted(self.pins.packages)}
        key = digest(inputs)
        root = nodeimage_dir() / "rootfs" / key
        done = root / ".kfstack-rootfs.json"

        def build() -> None:
            if shutil.which("debootstrap") is None or os.geteuid() != 0:
                raise NodeImageError("the node rootfs is made with debootstrap as root: "
                                     "apt-get install debootstrap, and run as root")
            staging = root.with_name(f".{key}.{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            debs = nodeimage_dir() / "debs"
            debs.mkdir(parents=True, exist_ok=True)
            run(["debootstrap", "--variant=minbase", f"--cache-dir={debs}",
                 f"--include={','.join(self.pins.packages)}", self.pins.debian_suite, str(staging), mirror],
                timeout=3600)
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for item in (staging / junk).glob("*"):
                    if item.is_file():
                        item.unlink()
            (staging / ".kfstack-rootfs.json").write_text(json.dumps(inputs, indent=2) + "\n")
            shutil.rmtree(root, ignore_errors=True)
            staging.rename(root)

        self.log.run("rootfs", key, done.exists, build)
        self.keys["rootfs"] = key
        return root

    def base_image(self, rootfs: Path, kind: KindSources) -> str:
        shim_bin = shim.build_shim(lambda line: None)
        containerd_bins = {b: bin_of(self.pins, b) for b in ("containerd", "ctr", "containerd-shim-runc-v2")}
        key = digest({"rootfs": self.keys["rootfs"], "kind": kind.version, "shim": shim_bin.parent.parent.name,
                      "containerd": {b: file_digest(p) for b, p in containerd_bins.items()}})
        tag = f"kfstack/kind-base:{key}"

        def build() -> None:
            with tempfile.TemporaryDirectory(dir=nodeimage_dir()) as tmp:
                root = Path(tmp) / "root"
                run(["cp", "-a", str(rootfs), str(root)], timeout=600)
                (root / ".kfstack-rootfs.json").unlink(missing_ok=True)
                apply_kind_base(root, kind.base_files)
                for name, path in containerd_bins.items():
                    _install(path, root / "usr/local/bin" / name)
                _install(shim_bin, root / "usr/local/sbin/runc")  # in front of Debian's /usr/sbin/runc
                spec = json.loads(run([str(containerd_bins["ctr"]), "oci", "spec"], timeout=60).stdout)
                spec.setdefault("hooks", {}).setdefault("createContainer", []).append(
                    {"path": "/kind/bin/mount-product-files.sh"})
                spec["process"].pop("rlimits", None)  # as kind's base image: no rlimits in the CRI base spec
                (root / "etc/containerd/cri-base.json").write_text(json.dumps(spec, indent=2) + "\n")
                archive = Path(tmp) / "root.tar"
                run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(archive), "."], timeout=900)
                docker("import", str(archive), f"{tag}-rootfs")
                context = Path(tmp) / "context"
                context.mkdir()
                (context / "Dockerfile").write_text(
                    f"FROM {tag}-rootfs\nENV container=docker\nSTOPSIGNAL SIGRTMIN+3\n"
                    f'LABEL {KEY_LABEL}="{key}"\nENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]\n')
                run([docker_cli(), "build", "-q", "-t", tag, str(context)], timeout=DOCKER_TIMEOUT,
                    env={"DOCKER_BUILDKIT": "0"})
                docker("rmi", f"{tag}-rootfs")

        self.log.run("base image", key, lambda: image_key(tag) == key, build)
        self.keys["base"] = key
        return tag

    # --- component images -------------------------------------------------------------------------

    def images(self, rootfs: Path, pause: Path, kind: KindSources) -> None:
        """Every image the node pre-loads, each saved as a tar for `ctr import`."""
        k8s = self.pins.kubernetes
        registry = "registry.k8s.io"
        wanted: list[tuple[str, dict[str, Path], list[str], str]] = [
            (f"{registry}/{c}:{k8s}", {f"usr/local/bin/{c}": bin_of(self.pins, c)}, [f"/usr/local/bin/{c}"], "")
            for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")]
        wanted += [
            (f"{registry}/etcd:{self.pins.etcd_image_tag}", {"usr/local/bin/etcd": bin_of(self.pins, "etcd")},
             ["/usr/local/bin/etcd"], ""),
            (f"{registry}/coredns/coredns:{self.pins.tools['coredns'].version}",
             {"coredns": bin_of(self.pins, "coredns")}, ["/coredns"], ""),
            (f"{registry}/pause:{self.pins.pause}", {"pause": pause}, ["/pause"], "65535:65535"),
            (kind.storage_images["provisioner"],
             {"usr/local/bin/local-path-provisioner": bin_of(self.pins, "local-path-provisioner")},
             ["/usr/local/bin/local-path-provisioner"], ""),
        ]
        for tag, files, entrypoint, user in wanted:
            self.mini_image(tag, files, entrypoint, user)
        self._helper_image(kind.storage_images["helper"], rootfs)
        self._kube_proxy_image(f"{registry}/kube-proxy:{k8s}", rootfs)

    def _save(self, name: str, tag: str, key: str, build_image: Callable[[], None]) -> None:
        tar = nodeimage_dir() / "images" / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', tag)}-{key}.tar"

        def build() -> None:
            replacing(tag, build_image)()
            tar.parent.mkdir(parents=True, exist_ok=True)
            tmp = tar.with_name(f".{tar.name}.{os.getpid()}")
            docker("save", "-o", str(tmp), tag)
            tmp.rename(tar)

        # Done only when both are there: kind loads the image from Docker, the node image imports the tar.
        self.log.run(f"image {name}", key, lambda: tar.exists() and image_key(tag) == key, build)
        self.image_tars[tag] = tar
        self.keys[f"image {tag}"] = key

    def mini_image(self, tag: str, files: Mapping[str, Path], entrypoint: list[str], user: str,
                   env: Mapping[str, str] | None = None) -> None:
        """A static binary on a minimal root: CA bundle, passwd with nobody, /tmp; `env` adds
        variables (HOME=/tmp for tools that write a cache under it)."""
        inputs: dict[str, object] = {"tag": tag, "files": {k: file_digest(v) for k, v in files.items()},
                                     "entry": entrypoint, "user": user, "layout": 1}
        if env:
            inputs["env"] = dict(env)  # only when set: the node's own images keep their keys
        key = digest(inputs)

        def build_image() -> None:
            with tempfile.TemporaryDirectory(dir=nodeimage_dir()) as tmp:
                archive = Path(tmp) / "root.tar"
                with tarfile.open(archive, "w") as tar:
                    _minimal_root(tar)
                    for dest, src in files.items():
                        tar.add(src, arcname=dest, filter=_root_owned(0o755))
                changes = ["--change", f"ENTRYPOINT {json.dumps(entrypoint)}", "--change",
                           "ENV PATH=/usr/local/bin:/usr/bin:/bin", "--change", f"LABEL {KEY_LABEL}={key}"]
                if user:
                    changes += ["--change", f"USER {user}"]
                for name, value in (env or {}).items():
                    changes += ["--change", f"ENV {name}={value}"]
                docker("import", *changes, str(archive), tag)

        self._save(tag.rsplit("/", 1)[-1].split(":")[0], tag, key, build_image)

    def _helper_image(self, tag: str, rootfs: Path) -> None:
        """kind's local-path helper: a static busybox with the applets its scripts use."""
        busybox = rootfs / "bin" / "busybox"
        if not busybox.exists():
            raise NodeImageError(f"{busybox} missing: the rootfs needs the busybox-static package")
        key = digest({"tag": tag, "busybox": file_digest(busybox)})

        def build_image() -> None:
            with tempfile.TemporaryDirectory(dir=nodeimage_dir()) as tmp:
                archive = Path(tmp) / "root.tar"
                with tarfile.open(archive, "w") as tar:
                    _minimal_root(tar)
                    tar.add(busybox, arcname="bin/busybox", filter=_root_owned(0o755))
                    for applet in ("sh", "mkdir", "rm", "rmdir", "ls", "cat", "chmod", "chown", "mv", "cp", "echo",
                                   "sleep", "test"):
                        link = tarfile.TarInfo(f"bin/{applet}")
                        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                        tar.addfile(link)
                docker("import", "--change", "ENV PATH=/bin", "--change", f"LABEL {KEY_LABEL}={key}", str(archive), tag)

        self._save("local-path-helper", tag, key, build_image)

    def _kube_proxy_image(self, tag: str, rootfs: Path) -> None:
        """kube-proxy needs iptables, nft and conntrack: the Debian rootfs plus the binary."""
        binary = bin_of(self.pins, "kube-proxy")
        key = digest({"tag": tag, "rootfs": self.keys["rootfs"], "kube-proxy": file_digest(binary)})

        def build_image() -> None:
            with tempfile.TemporaryDirectory(dir=nodeimage_dir()) as tmp:
                archive = Path(tmp) / "root.tar"
                run(["tar", "-C", str(rootfs), "--numeric-owner", "--exclude=./.kfstack-rootfs.json", "-cf",
                     str(archive), "."], timeout=900)
                with tarfile.open(archive, "a") as tar:
                    tar.add(binary, arcname="./usr/local/bin/kube-proxy", filter=_root_owned(0o755))
                docker("import", "--change", 'ENTRYPOINT ["/usr/local/bin/kube-proxy"]', "--change",
                       f"LABEL {KEY_LABEL}={key}", str(archive), tag)

        self._save("kube-proxy", tag, key, build_image)

    # --- node image -------------------------------------------------------------------------------

    def node_image(self, base: str, kind: KindSources) -> str:
        node_bins = {"/usr/bin/kubeadm": bin_of(self.pins, "kubeadm"), "/usr/bin/kubelet": bin_of(self.pins, "kubelet"),
                     "/usr/bin/kubectl": bin_of(self.pins, "kubectl"),
                     "/usr/local/bin/crictl": bin_of(self.pins, "crictl")}
        node_bins.update({f"/opt/cni/bin/{b}": bin_of(self.pins, b) for b in CNI_BINARIES})
        cni = cni_config(self.pins.pod_range)
        key = digest({"base": self.keys["base"], "images": {t: self.keys[f"image {t}"] for t in self.image_tars},
                      "bins": {d: file_digest(p) for d, p in node_bins.items()}, "cni": cni,
                      "storage": kind.storage_manifest, "kubernetes": self.pins.kubernetes, "layout": 1})
        tag = self.pins.tag

        def build() -> None:
            name = f"kfstack-nodeimage-build-{os.getpid()}"
            docker("run", "-d", "--name", name, "--entrypoint", "sleep", "--security-opt", "seccomp=unconfined",
                   base, "infinity", timeout=120)
            try:
                for dest, src in node_bins.items():
                    docker("cp", str(src), f"{name}:{dest}")
                with tempfile.TemporaryDirectory(dir=nodeimage_dir()) as tmp:
                    files = {"/etc/cni/net.d/10-kfstack-ptp.conflist": json.dumps(cni, indent=1) + "\n",
                             "/kind/manifests/default-storage.yaml": kind.storage_manifest,
                             "/kind/manifests/default-cni.yaml": CNI_PLACEHOLDER,
                             "/kind/version": self.pins.kubernetes}
                    docker("exec", name, "mkdir", "-p", "/etc/cni/net.d", "/kind/manifests", "/kind/images")
                    for index, (dest, text) in enumerate(files.items()):
                        local = Path(tmp) / f"f{index}"
                        local.write_text(text)
                        docker("cp", str(local), f"{name}:{dest}")
                docker("exec", name, "chmod", "0755", *node_bins)
                _import_images(name, self.image_tars)
                docker("commit", "--change", 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]', "--change",
                       f"LABEL {KEY_LABEL}={key}", name, tag)
            finally:
                run([docker_cli(), "rm", "-f", "-v", name], timeout=120, check=False)

        self.log.run("node image", key, lambda: image_key(tag) == key, replacing(tag, build))
        self.keys["node"] = key
        return tag


CNI_PLACEHOLDER = """apiVersion: v1
kind: ConfigMap
metadata:
  name: kfstack-cni
  namespace: kube-system
data:
  note: "a static ptp CNI config in /etc/cni/net.d (kindnetd is not built here): single-node clusters"
"""


def cni_config(pod_range: str) -> dict[str, object]:
    """A ptp network for one node: every pod gets an address from `pod_range`, masqueraded out."""
    return {"cniVersion": "0.3.1", "name": "kindnet", "plugins": [
        {"type": "ptp", "ipMasq": True, "mtu": 1500,
         "ipam": {"type": "host-local", "dataDir": "/run/cni-ipam-state", "routes": [{"dst": "0.0.0.0/0"}],
                  "ranges": [[{"subnet": pod_range}]]}},
        {"type": "portmap", "capabilities": {"portMappings": True}}]}


def _root_owned(mode: int) -> Callable[[tarfile.TarInfo], tarfile.TarInfo]:
    def fix(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = mode
        return info

    return fix


def _add_text(tar: tarfile.TarFile, name: str, text: str, mode: int = 0o644) -> None:
    import io

    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _minimal_root(tar: tarfile.TarFile) -> None:
    """/tmp, /etc/passwd with nobody (the manifests run as non-root), and the host's CA bundle."""
    for directory, mode in (("tmp", 0o1777), ("etc", 0o755), ("var/run", 0o755)):
        info = tarfile.TarInfo(directory)
        info.type, info.mode = tarfile.DIRTYPE, mode
        tar.addfile(info)
    _add_text(tar, "etc/passwd", "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n")
    _add_text(tar, "etc/group", "root:x:0:\nnogroup:x:65534:\n")
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.is_file():
        tar.add(bundle, arcname="etc/ssl/certs/ca-certificates.crt", filter=_root_owned(0o644))


def _install(src: Path, dest: Path, mode: int = 0o755) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    dest.chmod(mode)


def apply_kind_base(root: Path, files: Path) -> None:
    """What the "base" stage of kind's images/base/Dockerfile does to its Debian root."""
    for item in (files / "usr/local/bin").iterdir():
        _install(item, root / "usr/local/bin" / item.name)
    shutil.copytree(files / "kind", root / "kind", dirs_exist_ok=True)
    for item in (root / "kind" / "bin").iterdir():
        item.chmod(0o755)
    for src in ("etc/crictl.yaml", "etc/containerd", "etc/default", "etc/sysctl.d",
                "etc/systemd/system/kubelet.service.d"):
        source = files / src
        for item in [source] if source.is_file() else sorted(p for p in source.iterdir() if p.is_file()):
            _install(item, root / item.relative_to(files), 0o644)
    for unit in sorted((files / "etc/systemd/system").glob("*")):
        if unit.suffix in (".service", ".slice"):
            _install(unit, root / "etc/systemd/system" / unit.name, 0o644)
    (root / "lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service").unlink(missing_ok=True)
    for pattern in ("lib/systemd/system/multi-user.target.wants/*", "etc/systemd/system/*.wants/*",
                    "lib/systemd/system/local-fs.target.wants/*", "lib/systemd/system/sockets.target.wants/*udev*",
                    "lib/systemd/system/sockets.target.wants/*initctl*", "lib/systemd/system/basic.target.wants/*"):
        for item in root.glob(pattern):
            if item.is_symlink() or item.is_file():
                item.unlink()
    journald = root / "etc/systemd/journald.conf"
    if "ReadKMsg=no" not in journald.read_text():
        journald.write_text(journald.read_text() + "ReadKMsg=no\n")
    init = root / "sbin/init"
    init.unlink(missing_ok=True)
    init.symlink_to("/lib/systemd/systemd")
    run(["systemctl", f"--root={root}", "enable", "kubelet.service", "containerd.service",
         "undo-mount-hacks.service"], timeout=60)
    run(["systemctl", f"--root={root}", "mask", "systemd-binfmt.service"], timeout=60)
    for directory in ("etc/kubernetes/manifests", "opt/cni/bin", "LICENSES"):
        (root / directory).mkdir(parents=True, exist_ok=True)


def _import_images(container: str, tars: Mapping[str, Path]) -> None:
    """Start containerd in the build container, import every image unpacked-later and pinned, stop it."""
    run([docker_cli(), "exec", "-d", container, "sh", "-c", "containerd > /tmp/containerd.log 2>&1"], timeout=60)
    wait_until(lambda: (run([docker_cli(), "exec", container, "ctr", "version"], timeout=30,
                            check=False).returncode == 0, "containerd not answering"),
               timeout=60, interval=0.5, what="containerd in the node-image build container")
    for tag, tar in tars.items():
        docker("cp", str(tar), f"{container}:/kind/images/import.tar")
        try:
            docker("exec", container, "ctr", "--namespace=k8s.io", "images", "import", "--all-platforms",
                   "--no-unpack", "--digests", "--label=io.cri-containerd.pinned=pinned", "/kind/images/import.tar")
        except CommandError as exc:
            raise NodeImageError(f"importing {tag} into the node image failed:\n{exc}") from None
    docker("exec", container, "rm", "-rf", "/kind/images/import.tar")
    listed = docker("exec", container, "ctr", "--namespace=k8s.io", "images", "list", "-q")
    missing = [t for t in tars if t not in listed.split() and f"docker.io/{t}" not in listed.split()]
    if missing:
        raise NodeImageError(f"images missing from the node after import: {', '.join(missing)}")
    docker("exec", container, "pkill", "containerd")
    wait_until(lambda: (run([docker_cli(), "exec", container, "pgrep", "-x", "containerd"], timeout=30,
                            check=False).returncode != 0, "containerd still running"),
               timeout=60, interval=0.5, what="containerd to stop before the commit")


@dataclass(frozen=True)
class BuildResult:
    tag: str
    key: str
    summary: str
    seconds: float


def build_node_image(*, say: Say = print, sources: Path | None = None,
                     pins: NodeImagePins | None = None) -> BuildResult:
    """Build (or find cached) every step; returns the node image's tag and what was built."""
    start = time.monotonic()
    pins = pins or load_pins()
    build = Build(pins=pins, log=StepLog(say), sources=sources or installer.sources_dir(None))
    say(f"node image {pins.tag} (Kubernetes {pins.kubernetes}, kind {pins.tools['kind'].version}): source route")
    build.tools()
    kind = kind_sources(pins.tools["kind"].version)
    pause = build.pause()
    rootfs = build.rootfs()
    base = build.base_image(rootfs, kind)
    build.images(rootfs, pause, kind)
    tag = build.node_image(base, kind)
    seconds = time.monotonic() - start
    record = {"tag": tag, "key": build.keys["node"], "kubernetes": pins.kubernetes,
              "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "steps": build.log.entries}
    (nodeimage_dir() / "node-image.json").write_text(json.dumps(record, indent=2) + "\n")
    summary = build.log.summary()
    say(f"node image {tag}: ready ({summary}; {seconds:.0f}s)")
    return BuildResult(tag, build.keys["node"], summary, seconds)

