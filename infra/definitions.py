"""A release's CustomResourceDefinitions as one resource, server-side applied together, and one
resource per API group that awaits the group's kinds served.

Every other object is its own Kubernetes-provider resource; CRDs are not, because of what the
provider does after each CRD it creates: it drops its cached OpenAPI schema, and its next check or
create fetches and parses the whole document again, under a lock every other step waits on.
Kubeflow v1.11.0 has about 100 CRDs, each making the document bigger: on the sim cluster the
definitions phase took 56 of the deploy's 91 s (docs/benchmarks.md). Applied here, they take a few
seconds, and the provider reads the schema once, after all of them exist.

The API server establishes the 70 CRDs of a full release one after another, over 7 to 10 s on the
sim cluster. Whatever uses a kind waits only for the kinds of its own API group (`ServedGroup`,
one per group; infra/dependencies.py says who needs which), and the CRD resource applies the groups
that hold back the most first, so cert-manager's Issuers, or Argo's controller, do not wait for
the last group of the release.

What is kept: a preview shows which definitions change (their bodies, by name, are the inputs;
each packed, zlib and base64, a fifth of its JSON: the bodies were half of a full release's state,
which every `pulumi up` reads and writes, a no-op too); creates
adopt definitions that are already there (server-side apply, as after an interrupted update);
`pulumi destroy` deletes them and waits until they are gone, last, after every object that uses
them; an unreachable cluster on delete means there is nothing left to delete (as the Kubernetes
provider's `deleteUnreachable`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from infra.manifests.objects import Obj
from infra.server_apply import ApplyClient, ClusterResource, digest, pack, unpack, unreachable

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
ESTABLISH_TIMEOUT_S = 300.0
DELETE_TIMEOUT_S = 600.0
OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"  # what client-go reads
# Aggregated discovery (Kubernetes 1.26 and later; plain JSON, the group list, from older servers)
DISCOVERY_ACCEPT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
SERVED_POLL_S = 0.25
WARM_INTERVAL_S = 1.0
WARM_UNCHANGED_READS = 3
WARM_LIMIT_S = 60.0


def definition_bodies(objects: Sequence[Obj]) -> dict[str, str]:
    """CRD name -> its body as canonical JSON (a string, so no field or null is lost on the way)."""
    return {o["metadata"]["name"]: json.dumps(o, sort_keys=True, separators=(",", ":")) for o in objects}


def packed_definitions(objects: Sequence[Obj]) -> dict[str, str]:
    """CRD name -> packed body: the resource's `definitions` input."""
    return {name: pack(body) for name, body in definition_bodies(objects).items()}


def bodies_of(props: dict[str, Any]) -> dict[str, str]:
    """CRD name -> JSON body, from the resource's `definitions` input."""
    return {name: unpack(value) for name, value in props["definitions"].items()}


def digests_of(bodies: dict[str, str]) -> dict[str, str]:
    return {name: digest(body) for name, body in bodies.items()}


class DefinitionsClient(ApplyClient):
    """The few CRD calls the provider needs."""

    def __init__(self, kubeconfig: str, context: str | None) -> None:
        super().__init__(kubeconfig, context)
        self.schema_bytes: int | None = None  # the size of the document warm_schema last read
        self.schema_reads = 0  # how many times it read a new one

    def apply(self, body: str) -> None:
        self.apply_all([body])

    def apply_all(self, bodies: Sequence[str]) -> None:
        self.apply_many([(f"{CRD_PATH}/{obj['metadata']['name']}", obj) for obj in map(json.loads, bodies)])

    def names(self) -> set[str]:
        """Names of the CRDs in the cluster (metadata only: their full list is megabytes)."""
        accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
        listing = self._call("GET", CRD_PATH, header_params={"Accept": accept})
        return {item["metadata"]["name"] for item in listing.get("items") or []}

    def delete(self, name: str) -> None:
        self.delete_at(f"{CRD_PATH}/{name}")

    def wait_established(self, bodies: Mapping[str, str]) -> None:
        """Wait until every definition (name -> JSON body) is served (`wait_served`)."""
        self.wait_served(served_resources(bodies.values()), list(bodies))

    def discovery(self) -> DiscoveryReader:
        """The reader of this cluster's discovery that every wait of this process shares."""
        return discovery_reader(self)

    def wait_served(self, resources: Iterable[tuple[str, str, str]], names: Sequence[str],
                    timeout: float | None = None) -> None:
        """Wait until each (group, version, plural) is in the API server's discovery, where clients
        (the Kubernetes provider among them) look a kind up, and where the server lists a CRD only
        once it is established. `names` are the CRDs that serve them, watched on an old server.

        Polling the aggregated discovery document, not watching the CRDs: a watch has the server
        encode each definition's whole body, schema and all, at every status change (three or four
        per CRD), a tenth of its CPU while it establishes the release's 70, just when it is the
        create's bottleneck; the discovery document is a few hundred kilobytes, kept encoded, and
        answers "not modified" between changes (`DiscoveryReader`, one for every wait of this
        process). A server without aggregated discovery (before Kubernetes 1.26) is watched."""
        from smoke_tests.wait import wait_until

        wanted = set(resources)
        reader = self.discovery()

        def check() -> tuple[bool, list[str]]:
            listed = reader.read()
            if listed is None:
                self.watch_established(names)
                wanted.clear()
            else:
                wanted.difference_update(listed)
            return not wanted, sorted(f"{p}.{g}/{v}" for g, v, p in wanted)

        if wanted:
            wait_until(check, timeout=ESTABLISH_TIMEOUT_S if timeout is None else timeout, interval=SERVED_POLL_S,
                       what="CustomResourceDefinitions served", retry_on=())

    def watch_established(self, names: Sequence[str]) -> None:
        """Watch the CRDs (current state first, then changes) until each named one is established.

        A watch, not polling: each poll would read every CRD's schema again, and parsing megabytes
        twice a second took more CPU than the API server needed to establish them."""
        from smoke_tests.wait import WaitTimeout

        pending = set(names)
        deadline = time.monotonic() + ESTABLISH_TIMEOUT_S
        attempts = 0
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout("CustomResourceDefinitions established", ESTABLISH_TIMEOUT_S, attempts,
                                  sorted(pending), None)
            attempts += 1
            stream = self._call("GET", CRD_PATH, header_params={"Accept": "application/json"},
                                query_params=[("watch", "true"), ("timeoutSeconds", str(max(1, int(remaining))))],
                                _preload_content=False)
            try:
                for line in stream:
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") in ("ADDED", "MODIFIED") and established(obj):
                        pending.discard(obj["metadata"]["name"])
                        if not pending:
                            break
            finally:
                stream.release_conn()

    def warm_schema(self, after: Mapping[str, str] | None = None) -> threading.Thread:
        """In the background, wait until the definitions `after` (name -> JSON body) are served,
        then read the OpenAPI document until it stops changing, so the API server has rebuilt it
        before the next `pulumi up` asks.

        New CRDs make the document stale; the server rebuilds it lazily, on the next request, and
        its CRD controller goes on updating it for a few seconds after the CRDs are established.
        The next request was the Kubernetes provider's first check of the next `pulumi up`, which
        every other check waits on: on the sim cluster with the release's 70 CRDs, the protobuf
        document client-go asks for took 2.6 s to read right after they were established, 0.4 s
        once more when the last updates came in, then 0.006 s. So: read it as client-go does once
        the last API group is served (not before: each group served later would make the server
        rebuild it again), then ask each second whether it changed (`If-None-Match`: a 304 costs
        nothing) until it has stayed the same for a few reads. The `pulumi up` goes on meanwhile
        (the last group's workloads roll out); the thread ends with the provider's process, so what
        it did not finish is left to that check. Best effort: a failure only leaves the rebuild to
        that check."""
        def fetch() -> None:
            from kubernetes.client.exceptions import ApiException

            try:
                self.wait_established(after or {})
            except Exception:  # a definition not served is the error of what needs it
                return
            etag, unchanged = None, 0
            deadline = time.monotonic() + WARM_LIMIT_S
            while unchanged < WARM_UNCHANGED_READS and time.monotonic() < deadline:
                headers = {"Accept": OPENAPI_V2_PROTOBUF, **({"If-None-Match": etag} if etag else {})}
                try:
                    response = self._call("GET", "/openapi/v2", header_params=headers, _preload_content=False)
                    self.schema_bytes = len(response.read())
                    self.schema_reads += 1
                    etag, unchanged = response.headers.get("ETag"), 0
                    response.release_conn()
                except ApiException as exc:
                    if exc.status != 304:
                        return
                    unchanged += 1
                except Exception:  # unreachable: nothing depends on it
                    return
                time.sleep(WARM_INTERVAL_S)

        thread = threading.Thread(target=fetch, name="openapi-warm", daemon=True)
        thread.start()
        return thread

    def wait_gone(self, names: Sequence[str]) -> None:
        from smoke_tests.wait import wait_until

        def check() -> tuple[bool, list[str]]:
            left = sorted(set(names) & self.names())
            return not left, left

        wait_until(check, timeout=DELETE_TIMEOUT_S, interval=1.0, what="CustomResourceDefinitions deleted")


class DiscoveryReader:
    """What the API server's aggregated discovery document lists, read at most once per
    SERVED_POLL_S for every wait of this process: with one resource per CRD API group, some twenty
    wait at once, and each asking four times a second, and parsing the whole document at each of
    its changes, cost the API server about 1.3 CPU-s and this process 0.5 in a release's create
    (docs/benchmarks.md)."""

    def __init__(self, client: ApplyClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._etag: str | None = None  # the last document's, for "not modified"
        self._listed: set[tuple[str, str, str]] | None = set()

    def read(self) -> set[tuple[str, str, str]] | None:
        """(group, version, resource) of what discovery lists, at most SERVED_POLL_S old; None from a
        server without aggregated discovery."""
        from kubernetes.client.exceptions import ApiException

        with self._lock:
            if time.monotonic() - self._read_at >= SERVED_POLL_S:
                headers = {"Accept": DISCOVERY_ACCEPT, **({"If-None-Match": self._etag} if self._etag else {})}
                try:
                    response = self._client._call("GET", "/apis", header_params=headers, _preload_content=False)
                except ApiException as exc:
                    if exc.status != 304:
                        raise
                else:
                    document = json.loads(response.read())
                    self._etag = response.headers.get("ETag")
                    response.release_conn()
                    aggregated = document.get("kind") == "APIGroupDiscoveryList"
                    self._listed = discovered_resources(document) if aggregated else None
                self._read_at = time.monotonic()
            return None if self._listed is None else set(self._listed)


_READERS: dict[tuple[str, str | None], DiscoveryReader] = {}
_READERS_LOCK = threading.Lock()


def discovery_reader(client: ApplyClient) -> DiscoveryReader:
    """This process's reader of the discovery of `client`'s cluster (the first client to ask for it
    makes its calls)."""
    with _READERS_LOCK:
        return _READERS.setdefault((client.kubeconfig, client.context), DiscoveryReader(client))


def served_resources(bodies: Iterable[str]) -> set[tuple[str, str, str]]:
    """(group, version, plural) of every served version of the definitions (JSON bodies)."""
    return {resource for body in bodies for resource in served_by(json.loads(body))}


def served_by(crd: Obj) -> set[tuple[str, str, str]]:
    """(group, version, plural) of each version a definition serves."""
    spec = crd["spec"]
    return {(spec["group"], version["name"], spec["names"]["plural"])
            for version in spec.get("versions") or [] if version.get("served", True)}


def in_group_order(bodies: Mapping[str, str], groups: Sequence[str]) -> list[str]:
    """The bodies (name -> JSON), those of `groups[0]` first, then `groups[1]`'s, ..., then the rest."""
    rank = {group: i for i, group in enumerate(groups)}
    return sorted(bodies.values(), key=lambda body: rank.get(json.loads(body)["spec"]["group"], len(rank)))


def discovered_resources(document: Obj) -> set[tuple[str, str, str]]:
    """(group, version, resource) of every resource an aggregated discovery document lists."""
    return {(group["metadata"]["name"], version["version"], resource["resource"])
            for group in document.get("items") or [] for version in group.get("versions") or []
            for resource in version.get("resources") or []}


def established(obj: Obj) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


class DefinitionsProvider(ResourceProvider):
    """Outputs keep each definition's digest (not its body): enough to diff, small in the state."""

    def _client(self, props: dict[str, Any]) -> DefinitionsClient:
        return DefinitionsClient(props["kubeconfig"], props.get("context"))

    @staticmethod
    def _outs(props: dict[str, Any]) -> dict[str, Any]:
        return {"digests": digests_of(bodies_of(props)), "kubeconfig": props["kubeconfig"],
                "context": props.get("context")}

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Apply every definition, the groups in `groups`' order; each group's ServedGroup awaits it."""
        client = self._client(props)
        bodies = bodies_of(props)
        client.apply_all(in_group_order(bodies, props.get("groups") or []))
        client.warm_schema(after=bodies)
        return CreateResult("customresourcedefinitions", self._outs(props))

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=digests_of(bodies_of(news)) != olds.get("digests"), replaces=[])

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = self._client(news)
        old_digests: dict[str, str] = olds.get("digests") or {}
        bodies = bodies_of(news)
        changed = {n: bodies[n] for n, d in digests_of(bodies).items() if old_digests.get(n) != d}
        client.apply_all(in_group_order(changed, news.get("groups") or []))
        removed = sorted(set(old_digests) - set(bodies))
        for name in removed:
            client.delete(name)
        if changed:
            client.warm_schema(after=changed)
        client.wait_gone(removed)
        return UpdateResult(self._outs(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Refresh: a definition deleted behind Pulumi's back drops out, so the next update restores it."""
        present = self._client(props).names()
        digests = {n: d for n, d in (props.get("digests") or {}).items() if n in present}
        return ReadResult(id_, {**props, "digests": digests})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        names = sorted(props.get("digests") or {})
        try:
            client = self._client(props)
            for name in names:
                client.delete(name)
            client.wait_gone(names)
        except Exception as exc:
            if not unreachable(exc):
                raise


class CustomResourceDefinitions(ClusterResource):
    """All CRDs of a render, as one resource; `groups` is the order to apply their API groups in
    (an input the diff ignores: a new order changes nothing in the cluster)."""

    digests: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, objects: Sequence[Obj], kubeconfig: pulumi.Input[str], context: str | None,
                 opts: pulumi.ResourceOptions | None = None, groups: Sequence[str] = ()) -> None:
        props = {"definitions": packed_definitions(objects), "groups": list(groups), "digests": None}
        super().__init__(DefinitionsProvider(), name, props, kubeconfig, context, opts)


class ServedGroupProvider(ResourceProvider):
    """Waits until an API group's kinds are served; it changes nothing in the cluster, so a delete
    has nothing to do."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._wait(props)
        return CreateResult(f"served-{props['group']}", props)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=any(olds.get(k) != news.get(k) for k in ("group", "resources", "names")),
                          replaces=[])

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._wait(news)
        return UpdateResult(news)

    @staticmethod
    def _wait(props: dict[str, Any]) -> None:
        wanted = []
        for resource in props["resources"]:  # "version/plural"
            version, _, plural = resource.partition("/")
            wanted.append((props["group"], version, plural))
        DefinitionsClient(props["kubeconfig"], props.get("context")).wait_served(
            wanted, props["names"], timeout=float(props.get("timeout") or ESTABLISH_TIMEOUT_S))


class ServedGroup(ClusterResource):
    """One API group of the CRD resource's definitions, awaited until its kinds are served: what
    uses the group depends on this, and this on the CRD resource."""

    def __init__(self, name: str, definitions: Sequence[Obj], kubeconfig: pulumi.Input[str], context: str | None,
                 opts: pulumi.ResourceOptions | None = None, timeout: float = ESTABLISH_TIMEOUT_S) -> None:
        super().__init__(ServedGroupProvider(), name, served_group_props(definitions, timeout), kubeconfig,
                         context, opts)


def served_group_props(definitions: Sequence[Obj], timeout: float = ESTABLISH_TIMEOUT_S) -> dict[str, Any]:
    """A ServedGroup's inputs, the kubeconfig and context aside: its API group, each served
    "version/plural", the definitions' names (watched on an old server) and the timeout."""
    groups = {crd["spec"]["group"] for crd in definitions}
    if len(groups) != 1:
        raise ValueError(f"a served group is one API group's definitions, not {sorted(groups)}")
    return {"group": groups.pop(),
            "resources": sorted(f"{v}/{p}" for crd in definitions for _, v, p in served_by(crd)),
            "names": sorted(crd["metadata"]["name"] for crd in definitions), "timeout": timeout}
