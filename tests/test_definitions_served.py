"""T0: waits until definitions are in the API server's aggregated discovery (infra/definitions.py
`wait_served`), against a scripted server: what counts as served, the "not modified" answers
between changes, one read for every wait of a process, a timeout that names what is missing, and
an older server without aggregated discovery, which is watched instead."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

import infra.definitions as definitions
import infra.server_apply as server_apply
from infra.definitions import (
    DefinitionsClient,
    DiscoveryReader,
    definition_bodies,
    discovered_resources,
    served_resources,
)
from smoke_tests.wait import WaitTimeout


def crd(plural: str, versions: list[tuple[str, bool]]) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.example.org"},
            "spec": {"group": "example.org", "names": {"plural": plural, "kind": plural.title()},
                     "versions": [{"name": name, "served": served, "storage": i == 0}
                                  for i, (name, served) in enumerate(versions)]}}


def document(*resources: tuple[str, str, str]) -> dict[str, Any]:
    groups: dict[str, dict[str, list[str]]] = {}
    for group, version, plural in resources:
        groups.setdefault(group, {}).setdefault(version, []).append(plural)
    return {"kind": "APIGroupDiscoveryList", "items": [
        {"metadata": {"name": g}, "versions": [{"version": v, "resources": [{"resource": r} for r in rs]}
                                                for v, rs in versions.items()]}
        for g, versions in groups.items()]}


class Response:
    def __init__(self, body: dict[str, Any], etag: str) -> None:
        self.body, self.headers = json.dumps(body).encode(), {"ETag": etag}

    def read(self) -> bytes:
        return self.body

    def release_conn(self) -> None:
        pass


class ScriptedServer(DefinitionsClient):
    """Answers GET /apis from a script: a document, or None for "not modified"."""

    def __init__(self, answers: list[dict[str, Any] | None]) -> None:
        self.answers, self.asked, self.watched = answers, [], []  # type: ignore[var-annotated]
        self.reader = DiscoveryReader(self)

    def discovery(self) -> DiscoveryReader:
        return self.reader

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        assert (method, path) == ("GET", "/apis")
        self.asked.append(kwargs["header_params"])
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if answer is None:
            raise ApiException(status=304)
        return Response(answer, etag=f'"{len(self.asked)}"')

    def watch_established(self, names: Any) -> None:
        self.watched.extend(names)


def test_served_means_every_served_version_of_each_kind() -> None:
    bodies = definition_bodies([crd("widgets", [("v1", True), ("v1beta1", True), ("v1alpha1", False)]),
                                crd("gadgets", [("v2", True)])])
    assert served_resources(bodies.values()) == {("example.org", "v1", "widgets"),
                                                 ("example.org", "v1beta1", "widgets"),
                                                 ("example.org", "v2", "gadgets")}
    assert discovered_resources(document(("example.org", "v1", "widgets"), ("", "v1", "pods"))) == \
        {("example.org", "v1", "widgets"), ("", "v1", "pods")}


def test_waits_until_discovery_lists_them_asking_with_the_last_etag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(definitions, "SERVED_POLL_S", 0.0)
    bodies = definition_bodies([crd("widgets", [("v1", True)]), crd("gadgets", [("v1", True)])])
    server = ScriptedServer([document(("example.org", "v1", "widgets")), None, None,
                             document(("example.org", "v1", "widgets"), ("example.org", "v1", "gadgets"))])
    server.wait_established(bodies)
    assert len(server.asked) == 4 and server.watched == []
    assert "If-None-Match" not in server.asked[0]
    assert [h.get("If-None-Match") for h in server.asked[1:]] == ['"1"', '"1"', '"1"']
    assert all("as=APIGroupDiscoveryList" in h["Accept"] for h in server.asked)


def test_waits_at_once_share_one_read_per_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """Twenty groups waiting at once ask once per poll between them, not once each."""
    import threading

    monkeypatch.setattr(definitions, "SERVED_POLL_S", 0.2)
    served = [("example.org", "v1", f"kind{i}s") for i in range(20)]
    server = ScriptedServer([document(*served)])
    waits = [threading.Thread(target=server.wait_served, args=([resource], [])) for resource in served]
    for wait in waits:
        wait.start()
    for wait in waits:
        wait.join(10)
    assert len(server.asked) == 1  # every wait found its kind in the one document read
    assert server.reader.read() == set(served) and len(server.asked) == 1  # still fresh: not asked again


def test_a_kind_that_never_appears_times_out_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(definitions, "SERVED_POLL_S", 0.0)
    monkeypatch.setattr(definitions, "ESTABLISH_TIMEOUT_S", 0.05)
    bodies = definition_bodies([crd("widgets", [("v1", True)]), crd("gadgets", [("v1", True)])])
    server = ScriptedServer([document(("example.org", "v1", "widgets"))])
    with pytest.raises(WaitTimeout, match=r"gadgets\.example\.org/v1") as caught:
        server.wait_established(bodies)
    assert "widgets" not in str(caught.value)


def test_a_server_without_aggregated_discovery_is_watched() -> None:
    bodies = definition_bodies([crd("widgets", [("v1", True)])])
    server = ScriptedServer([{"kind": "APIGroupList", "groups": []}])
    server.wait_established(bodies)
    assert server.watched == ["widgets.example.org"] and len(server.asked) == 1


def test_nothing_to_wait_for_asks_nothing() -> None:
    server = ScriptedServer([document()])
    server.wait_established({})
    assert server.asked == []


class BusyServer(DefinitionsClient):
    """Answers each apply with the given statuses first (an ApiException each), then accepts it."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.applied = statuses, 0

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        assert method == "PATCH" and kwargs["query_params"] == [("fieldManager", "kubeflow-stacks"), ("force", "true")]
        self.applied += 1
        if self.statuses:
            raise ApiException(status=self.statuses.pop(0))
        return {}


def test_an_apply_the_server_was_too_busy_for_is_sent_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_apply.time, "sleep", lambda _: None)
    [body] = definition_bodies([crd("widgets", [("v1", True)])]).values()
    server = BusyServer([504, 503])
    server.apply(body)
    assert server.applied == 3
    refused = BusyServer([422])  # the definition itself refused: no retry
    with pytest.raises(ApiException):
        refused.apply(body)
    assert refused.applied == 1
    overloaded = BusyServer([504] * server_apply.APPLY_ATTEMPTS)
    with pytest.raises(ApiException):
        overloaded.apply(body)
    assert overloaded.applied == server_apply.APPLY_ATTEMPTS
