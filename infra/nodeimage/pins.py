"""The node image's pins, read from versions.toml: [nodeimage] and the [tools.*] it builds from."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from infra.toolchain.model import Tool, load_toolchain
from infra.versions import VERSIONS_FILE

# The toolchain tools whose binaries go into the node image, in build order.
NODE_TOOLS = ("kubernetes", "etcd", "containerd", "cni-plugins", "crictl", "coredns", "local-path-provisioner",
              "kind")


@dataclass(frozen=True)
class NodeImagePins:
    tag: str
    debian_suite: str
    debian_mirror: str
    packages: tuple[str, ...]
    pause: str
    pod_range: str
    tools: dict[str, Tool]

    @property
    def kubernetes(self) -> str:
        return self.tools["kubernetes"].version

    @property
    def etcd_image_tag(self) -> str:
        """kubeadm's etcd image tag: the etcd version with its image revision (3.6.5 -> 3.6.5-0)."""
        return f"{self.tools['etcd'].number}-0"


def load_pins(path: Path = VERSIONS_FILE) -> NodeImagePins:
    table = tomllib.loads(path.read_text())["nodeimage"]
    toolchain = load_toolchain()
    tools = {name: toolchain.get(name) for name in NODE_TOOLS}
    return NodeImagePins(tag=str(table["tag"]).format(kubernetes=tools["kubernetes"].version),
                         debian_suite=str(table["debian_suite"]), debian_mirror=str(table.get("debian_mirror", "")),
                         packages=tuple(table["packages"]), pause=str(table["pause"]),
                         pod_range=str(table["pod_range"]), tools=tools)
