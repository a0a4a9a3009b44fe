"""Where Kubeflow's volumes come from: the cluster's own class, a provisioner the stack deploys,
or volumes made in advance; and per-claim overrides of upstream's sizes and classes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal, get_args

from pydantic import AfterValidator, BeforeValidator, Field

from infra.settings.fields import (
    DNS_LABEL,
    HOST,
    AbsolutePath,
    Problem,
    Quantity,
    Section,
    _text,
    mapping,
    matches,
)

StorageMode = Literal["existing", "local-path", "nfs-subdir", "static"]
STORAGE_MODES: tuple[str, ...] = get_args(StorageMode)
_DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class ClaimOverride(Section):
    not_a_map: ClassVar[str] = "must be a map with size and/or storageClass"

    size: Quantity | None = None
    storage_class: Annotated[str, BeforeValidator(_text), matches(
        _DNS_SUBDOMAIN, "must be a StorageClass name (lower-case DNS name)")] | None = None


class NfsConfig(Section):
    server: Annotated[str, BeforeValidator(_text), matches(HOST, "must be a host name or IP address")] | None = None
    path: AbsolutePath | None = None


class StorageConfig(Section):
    mode: Annotated[StorageMode, BeforeValidator(_text)] = "existing"
    default_class: Annotated[str, BeforeValidator(_text), matches(DNS_LABEL, "must be a DNS label")] = "standard"
    nfs: NfsConfig = NfsConfig()
    static_host_path: AbsolutePath = "/var/lib/kubeflow-stacks/volumes"
    claims: Annotated[Mapping[str, ClaimOverride], mapping("must map claim names to {size, storageClass}"),
                      AfterValidator(lambda m: dict(sorted(m.items())))] = Field(default_factory=dict)

    @property
    def nfs_server(self) -> str | None:
        return self.nfs.server

    @property
    def nfs_path(self) -> str | None:
        return self.nfs.path

    def problems(self) -> list[Problem]:
        """An NFS provisioner needs the server and its export."""
        if self.mode != "nfs-subdir":
            return []
        return [Problem(f"storage.nfs.{key}", None, "is required")
                for key, value in (("server", self.nfs.server), ("path", self.nfs.path)) if value is None]
