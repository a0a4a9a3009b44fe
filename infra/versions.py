"""Reads `versions.toml`, the single source of every pinned version."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from infra.errors import UserError

VERSIONS_FILE = Path(__file__).with_name("versions.toml")


@dataclass(frozen=True)
class Release:
    """One Kubeflow release: where its manifests come from and what it pins."""

    tag: str
    archive_url: str
    sha256: str
    kustomize: str
    dex: str
    oauth2_proxy: str
    kubernetes: str
    kfp_backend: str = ""
    kserve: str = ""
    sklearn_server_packages: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "sklearn_server_packages", tuple(self.sklearn_server_packages))


class UnknownReleaseError(UserError, KeyError):
    """A release the versions file does not pin."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Versions:
    python: dict[str, str]
    default_release: str
    releases: dict[str, Release]
    kind_node_image: str
    minikube_base_image: str
    images: dict[str, str]
    tools: dict[str, dict[str, Any]]
    # [component_images]: the upstream images built here, in the file's order (`kfstack nodeimage
    # components`); a stack loads them all into its nodes with the set `componentImages`.
    component_images: tuple[str, ...] = ()

    def release(self, tag: str) -> Release:
        try:
            return self.releases[tag]
        except KeyError:
            known = ", ".join(sorted(self.releases))
            raise UnknownReleaseError(f"Kubeflow release {tag} is not in {VERSIONS_FILE.name} (known: {known}), "
                                      "so it cannot be fetched; point kubeflow.manifests (or KFSTACK_MANIFESTS) "
                                      "at a local tree of it") from None


@cache
def load_versions(path: Path = VERSIONS_FILE) -> Versions:
    data = tomllib.loads(path.read_text())
    releases = {tag: Release(tag=tag, **spec) for tag, spec in data["kubeflow"]["releases"].items()}
    return Versions(python=dict(data["python"]), default_release=data["kubeflow"]["default_release"],
                    releases=releases, kind_node_image=_pinned_image(data["kind"]),
                    minikube_base_image=_pinned_image(data["minikube"], "base_image"),
                    images=dict(data.get("images", {})),
                    tools=dict(data.get("tools", {})),
                    component_images=tuple(data.get("component_images", {})))


def _pinned_image(section: dict[str, Any], key: str = "node_image") -> str:
    """`name:tag@digest` when a digest is recorded: the tag for people, the digest for the pull."""
    image = str(section[key])
    digest = str(section.get(f"{key}_digest") or "")
    return f"{image}@{digest}" if digest else image
