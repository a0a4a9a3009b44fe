"""What the project's own dynamic resources share: server-side apply over plain HTTP, the packed
bodies they keep as inputs, and a base class that keeps their kubeconfig secret.

The CRDs (infra/definitions.py) and the objects that are only written, never awaited
(infra/object_set.py), are applied by a dynamic provider rather than one Kubernetes-provider
resource each. Both apply as the same field manager as every other object, so either can adopt
what the other, or an interrupted update, left behind.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import sys
import threading
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pulumi
from pulumi.dynamic import Resource, ResourceProvider

from infra.manifests.objects import Obj

FIELD_MANAGER = "kubeflow-stacks"
# How the Kubernetes provider is told to apply as FIELD_MANAGER (infra/apply.py `with_field_manager`);
# it applies the annotation to the cluster with the object.
FIELD_MANAGER_ANNOTATION = "pulumi.com/patchFieldManager"
# Answers of an API server too busy to finish in time (a 504 after its request timeout, seen when a
# 2-core machine ran a kind cluster beside a sim one): a server-side apply is idempotent, so it is
# sent again, after 1, 2, 4 and 8 s.
BUSY_STATUSES = frozenset({429, 500, 503, 504})
APPLY_ATTEMPTS = 5
PACKED = "zlib+base64:"
# Calls Pulumi's dynamic provider process serves at once (`pulumi/dynamic/__main__.py`), and as
# many as it serves once this module is imported there (`serve_more_calls_at_once`)
PULUMI_DYNAMIC_PROVIDER_CALLS = 4
DYNAMIC_PROVIDER_CALLS = 64


def pack(body: str) -> str:
    """A body as a resource's input keeps it. Diffs compare digests of the unpacked bodies, so a
    zlib that packs the same body differently changes nothing."""
    return PACKED + base64.b64encode(zlib.compress(body.encode())).decode()


def unpack(value: str) -> str:
    """A body's JSON from its input (one stored before bodies were packed is its JSON already)."""
    if not value.startswith(PACKED):
        return value
    return zlib.decompress(base64.b64decode(value[len(PACKED):])).decode()


def digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def unreachable(exc: BaseException) -> bool:
    """A connection that cannot be made at all (the cluster is gone), not an API error."""
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    return isinstance(exc, (MaxRetryError, NewConnectionError, ConnectionError))


class ApplyClient:
    """Server-side apply, delete and raw calls, through the `kubernetes` client and a kubeconfig text."""

    threads = 4

    def __init__(self, kubeconfig: str, context: str | None) -> None:
        import yaml
        from kubernetes import config

        self.kubeconfig, self.context = kubeconfig, context
        self.api = config.new_client_from_config_dict(yaml.safe_load(kubeconfig), context=context or None)
        self.api.configuration.connection_pool_maxsize = self.threads

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.api.call_api(path, method, auth_settings=["BearerToken"], response_type="object",
                                 _return_http_data_only=True, **kwargs)

    def apply_at(self, path: str, obj: Obj) -> None:
        """Server-side apply of one object at its API path, taking over conflicting fields (as
        upstream's `kubectl apply --server-side --force-conflicts`)."""
        from kubernetes.client.exceptions import ApiException

        for attempt in range(APPLY_ATTEMPTS):
            try:
                self._call("PATCH", path, body=obj,
                           query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
                           header_params={"Content-Type": "application/apply-patch+yaml",
                                          "Accept": "application/json"})
                return
            except ApiException as exc:
                if exc.status not in BUSY_STATUSES or attempt == APPLY_ATTEMPTS - 1:
                    raise
                time.sleep(2 ** attempt)

    def apply_many(self, items: Sequence[tuple[str, Obj]]) -> None:
        """(path, object) pairs, `threads` at a time; the first failure is raised."""
        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(lambda item: self.apply_at(*item), items))

    def merge_patch_at(self, path: str, patch: Obj) -> None:
        """A JSON merge patch (a `None` removes a field); an object that is gone is skipped."""
        from kubernetes.client.exceptions import ApiException

        try:
            self._call("PATCH", path, body=patch, query_params=[("fieldManager", FIELD_MANAGER)],
                       header_params={"Content-Type": "application/merge-patch+json", "Accept": "application/json"})
        except ApiException as exc:
            if exc.status != 404:
                raise

    def delete_at(self, path: str) -> None:
        """Delete one object; one that is already gone is not an error."""
        from kubernetes.client.exceptions import ApiException

        try:
            self._call("DELETE", path, header_params={"Accept": "application/json"})
        except ApiException as exc:
            if exc.status != 404:
                raise


class ClusterResource(Resource):
    """A dynamic resource of the project that calls the cluster: its inputs carry the kubeconfig
    (a secret, in the state's outputs too) and the context to use."""

    def __init__(self, provider: ResourceProvider, name: str, props: dict[str, Any], kubeconfig: pulumi.Input[str],
                 context: str | None, opts: pulumi.ResourceOptions | None = None) -> None:
        secret = pulumi.ResourceOptions(additional_secret_outputs=["kubeconfig"])
        super().__init__(provider, name, {**props, "kubeconfig": pulumi.Output.secret(kubeconfig), "context": context},
                         pulumi.ResourceOptions.merge(opts, secret))


def serve_more_calls_at_once(workers: int = DYNAMIC_PROVIDER_CALLS) -> int:
    """In Pulumi's dynamic provider process, let its gRPC server run `workers` calls at once.

    Pulumi's process serves 4, and the resources of this project that wait (one per CRD API group
    until its kinds are served, an admission gate until its webhooks answer) hold a call each while
    they wait. With 4 of them waiting, every other call queues behind them, the engine's check of
    the next dynamic resource too, and the engine registers nothing else until a call returns: on
    the sim cluster, no step began for 4 s while the CRD groups were being established. The pool is
    Pulumi's, CPython's ThreadPoolExecutor, which reads its limit each time it is handed a call; it
    is found once, when the process first imports this module (to unpickle one of our providers).
    Returns how many pools were widened (0 in any other process). pulumi is pinned
    (infra/versions.toml); T0 (tests/test_server_apply.py) checks the pool, T2
    (tests/test_definitions.py) the engine."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is None or spec.name != "pulumi.dynamic.__main__":
        return 0
    widened = 0
    for obj in gc.get_objects():
        if isinstance(obj, ThreadPoolExecutor) and obj._max_workers == PULUMI_DYNAMIC_PROVIDER_CALLS:
            obj._max_workers = workers
            # It counts a permit per call served and starts a thread only when none is left: start
            # from none, so the next call that finds every thread busy gets a new one.
            obj._idle_semaphore = threading.Semaphore(0)
            widened += 1
    return widened


serve_more_calls_at_once()
