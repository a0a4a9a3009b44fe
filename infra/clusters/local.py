"""Honest Python dynamic providers for clusters made by a local binary (kind, minikube, kwokctl).

The engine serializes the provider object into state, so it holds no clients or secrets; every
method finds the pinned binary itself. IDs are deterministic, `diff` asks for replacement when a
field that forces a new cluster changes, and the kubeconfig output is secret.
"""

from __future__ import annotations

import abc
import json
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from infra.clusters.preload import load_lacking
from infra.errors import UserError
from infra.paths import clusters_dir

# Inputs that matter only when the cluster is created, and outputs create adds (a provider's
# `extra_outputs`): changing them later changes nothing.
CREATE_ONLY_KEYS = frozenset({"kubeconfig", "owner", "adopt", "skippedChecks", "lateImages"})


class ClusterExistsError(UserError):
    """A cluster of the stack's name runs already, and the stack may not take it over."""


class OwnershipRecord:
    """Which stack made the cluster in a working directory: written before a create starts, so
    a create that was interrupted can be told apart from a cluster someone else made."""

    FILE = "owner.json"

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / self.FILE

    def owner(self) -> str | None:
        try:
            return str(json.loads(self.path.read_text())["owner"]) or None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, owner: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"owner": owner, "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
        tmp.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def note(line: str) -> None:
    """Progress from inside a dynamic provider (its own process: stderr reaches the engine's log)."""
    print(line, file=sys.stderr, flush=True)


def whole(value: Any) -> int:
    """Numbers come back from the engine as floats (protobuf Struct); counts are whole numbers."""
    return int(value)


class LocalClusterProvider(ResourceProvider, abc.ABC):
    """create/read/diff/update/delete in terms of four small cluster operations."""

    kind: ClassVar[str]
    # Inputs whose change needs a new cluster (everything else is updated in place).
    replace_keys: ClassVar[tuple[str, ...]] = ()
    # List inputs whose order means nothing: the same items in another order are no change.
    unordered_keys: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def create_cluster(self, props: dict[str, Any]) -> str:
        """Create the cluster and return its kubeconfig."""

    @abc.abstractmethod
    def delete_cluster(self, props: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def cluster_exists(self, props: dict[str, Any]) -> bool: ...

    def update_cluster(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Apply in-place changes; by default there are none beyond what `replace_keys` lists."""

    @abc.abstractmethod
    def adopt_cluster(self, props: dict[str, Any]) -> str:
        """Return the kubeconfig of a cluster of this name that already runs."""

    def extra_outputs(self, props: dict[str, Any]) -> dict[str, Any]:
        """Outputs beside the kubeconfig (named in CREATE_ONLY_KEYS and the resource's `outputs`)."""
        return {}

    def cluster_id(self, props: dict[str, Any]) -> str:
        return f"{self.kind}:{props['name']}"

    def workdir(self, props: dict[str, Any]) -> Path:
        """The cluster's working directory: kubeconfig, config and the ownership record."""
        return clusters_dir() / f"{self.kind}-{props['name']}"

    def create(self, props: dict[str, Any]) -> CreateResult:
        owner = str(props.get("owner") or "")
        record = OwnershipRecord(self.workdir(props))
        if self.cluster_exists(props):
            # Never take over (and later delete) a cluster someone else made. Adopt only what this
            # stack's own interrupted create left, or what the user explicitly hands over.
            if not (props.get("adopt") is True or (owner and record.owner() == owner)):
                raise ClusterExistsError(self.exists_message(props, record.owner()))
            kubeconfig = self.adopt_cluster(props)
            record.write(owner)
            return CreateResult(self.cluster_id(props), {**props, **self.extra_outputs(props),
                                                         "kubeconfig": kubeconfig})
        record.write(owner)  # before the create: an interrupted create is then known to be ours
        try:
            kubeconfig = self.create_cluster(props)
        except Exception:
            # Leave nothing half-created. The cluster did not exist a moment ago, so whatever
            # stands now was made by this create.
            if self.cluster_exists(props):
                self.delete_cluster(props)
            record.remove()
            raise
        return CreateResult(self.cluster_id(props), {**props, **self.extra_outputs(props), "kubeconfig": kubeconfig})

    def exists_message(self, props: dict[str, Any], recorded_owner: str | None) -> str:
        name = props["name"]
        made_by = (f"it was made by the stack {recorded_owner}" if recorded_owner
                   else "this stack did not create it")
        return (f"a {self.kind} cluster named {name!r} already exists and {made_by}, so it is left "
                f"untouched. To deploy onto it without managing its lifecycle, use "
                f"`cluster.provider: existing`; to let this stack take it over (and delete it on "
                f"`pulumi destroy`), set `pulumi config set --path cluster.adopt true`; or pick "
                f"another name with `pulumi config set --path cluster.name <name>`.")

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        if not self.cluster_exists(props):
            # Gone: refresh drops it and the next up recreates it. The record goes too, so a
            # cluster someone makes later under this name is never taken for this stack's.
            OwnershipRecord(self.workdir(props)).remove()
            return ReadResult(None, {})
        return ReadResult(id_, props)

    def _same(self, key: str, old: Any, new: Any) -> bool:
        if key in self.unordered_keys and isinstance(old, list) and isinstance(new, list):
            return sorted(map(str, old)) == sorted(map(str, new))
        return bool(old == new)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = sorted(k for k in set(olds) | set(news)
                         if k not in CREATE_ONLY_KEYS and not k.startswith("__")
                         and not self._same(k, olds.get(k), news.get(k)))
        replaces = [k for k in changed if k in self.replace_keys]
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self.update_cluster(olds, news)
        return UpdateResult({**news, **self.extra_outputs(news), "kubeconfig": olds.get("kubeconfig", "")})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        # The state holds this cluster, so this stack created or adopted it.
        if self.cluster_exists(props):
            self.delete_cluster(props)
        OwnershipRecord(self.workdir(props)).remove()


class ContainerNodesProvider(LocalClusterProvider):
    """A local cluster whose nodes are containers on the host's runtime (kind; minikube's docker
    driver): the local images in `preloadImages` are loaded into them when they lack them (compared
    by image ID), and a changed list is the one change such a cluster takes in place (a reordered
    one is none: the set `componentImages` lists them in versions.toml's order)."""

    unordered_keys = ("preloadImages",)

    @abc.abstractmethod
    def node_containers(self, props: dict[str, Any]) -> list[str]:
        """The cluster's node containers."""

    def preload(self, props: dict[str, Any]) -> None:
        images = list(props.get("preloadImages") or [])
        if images:
            load_lacking(self.node_containers(props), images, note)

    def update_cluster(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if old.get("preloadImages") != new.get("preloadImages"):
            self.preload(new)


class LocalClusterResource(Resource):
    """The dynamic resource for one local cluster; its kubeconfig output is secret."""

    kubeconfig: pulumi.Output[str]

    def __init__(self, provider: LocalClusterProvider, name: str, props: dict[str, Any],
                 opts: pulumi.ResourceOptions, *, adopt: bool = False, outputs: tuple[str, ...] = ()) -> None:
        # `owner` names this stack in the ownership record; `adopt` hands over a running cluster;
        # `outputs` are the provider's extra outputs, read as attributes of this resource.
        owner = f"{pulumi.get_project()}/{pulumi.get_stack()}"
        super().__init__(provider, name, {**props, **dict.fromkeys(outputs), "owner": owner, "adopt": adopt,
                                          "kubeconfig": None},
                         pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
                             additional_secret_outputs=["kubeconfig"])))
