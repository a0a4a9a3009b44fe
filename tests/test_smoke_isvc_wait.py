"""The suite's InferenceServices are awaited together (T0): one poll reads every one not yet Ready,
a Ready one is not read again, each one's host comes back, and a timeout names those not Ready with
what they last showed. The API is a fake answering as KServe's status does. Then each model is asked through a gateway
until it answers (Ready comes seconds before the Service routes to it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from smoke_tests.fixtures import models
from smoke_tests.inference import ModelEndpoint
from smoke_tests.wait import WaitTimeout


class FakeCustomObjects:
    """`name` is Ready from its `ready_at`-th read on (never when None)."""

    def __init__(self, ready_at: dict[str, int | None]) -> None:
        self.ready_at = ready_at
        self.reads: list[str] = []

    def __call__(self, _api: Any) -> FakeCustomObjects:
        return self

    def get_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                     name: str) -> dict[str, Any]:
        assert (group, version, plural) == ("serving.kserve.io", "v1beta1", "inferenceservices")
        self.reads.append(name)
        at = self.ready_at[name]
        ready = at is not None and self.reads.count(name) >= at
        conditions = [{"type": "Ready", "status": "True" if ready else "False",
                       **({} if ready else {"reason": "PredictorNotReady", "message": "0 of 1 ready"})}]
        return {"status": {"url": f"http://{name}.{namespace}.example.com", "conditions": conditions}}


def test_inferenceservices_are_polled_together_until_each_is_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCustomObjects({"kfstack-iris": 1, "kfstack-mnist": 3})
    monkeypatch.setattr("kubernetes.client.CustomObjectsApi", fake)
    monkeypatch.setattr(models, "ISVC_POLL_S", 0.01)
    hosts = models._await_isvcs(object(), "ns", ["kfstack-iris", "kfstack-mnist"], timeout=10)
    assert hosts == {"kfstack-iris": "kfstack-iris.ns.example.com", "kfstack-mnist": "kfstack-mnist.ns.example.com"}
    assert fake.reads == ["kfstack-iris", "kfstack-mnist", "kfstack-mnist", "kfstack-mnist"]


def test_a_timeout_names_the_inferenceservices_not_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCustomObjects({"kfstack-iris": 1, "kfstack-mnist": None})
    monkeypatch.setattr("kubernetes.client.CustomObjectsApi", fake)
    monkeypatch.setattr(models, "ISVC_POLL_S", 0.01)
    with pytest.raises(WaitTimeout) as timed_out:
        models._await_isvcs(object(), "ns", ["kfstack-iris", "kfstack-mnist"], timeout=0.1)
    assert "ns/kfstack-iris, ns/kfstack-mnist to be Ready" in str(timed_out.value)
    assert timed_out.value.last == {"kfstack-mnist": {"url": "http://kfstack-mnist.ns.example.com", "conditions": {
        "Ready": ("False", "PredictorNotReady", "0 of 1 ready")}}}


class ModelGateway:
    """A gateway on a loopback port answering KServe's V1 model-ready call: 502 for a host's first
    `fails[host]` calls (the Service's routes not there yet), then the model server's 200."""

    def __init__(self, fails: dict[str, int | None]) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.fails = fails
        self.calls: list[tuple[str, str, str | None]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host = self.headers["Host"]
                gateway.calls.append((host, self.path, self.headers.get("Authorization")))
                left = gateway.fails[host]
                if left is None or left > 0:
                    gateway.fails[host] = None if left is None else left - 1
                    body, status = b"<html>502 Bad Gateway</html>", 502
                else:
                    body, status = json.dumps({"name": self.path.rsplit("/", 1)[-1], "ready": True}).encode(), 200
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def endpoint(self, name: str) -> ModelEndpoint:
        return ModelEndpoint(name, "ns", f"{name}-ns.example.com", self.url, Path("."), [[0.0]], [0])


@pytest.fixture
def gateway_factory() -> Iterator[Callable[[dict[str, int | None]], ModelGateway]]:
    made: list[ModelGateway] = []

    def make(fails: dict[str, int | None]) -> ModelGateway:
        made.append(ModelGateway(fails))
        return made[-1]

    yield make
    for gateway in made:
        gateway.server.shutdown()
        gateway.server.server_close()


def test_each_model_is_asked_until_it_answers_through_the_gateway(monkeypatch: pytest.MonkeyPatch,
        gateway_factory: Callable[[dict[str, int | None]], ModelGateway]) -> None:
    """Ready InferenceServices whose routes lag: the wait goes on through the gateway's 502s, with the
    owner's token and each model's host, and asks a model that answered no more."""
    monkeypatch.setattr(models, "ISVC_POLL_S", 0.01)
    gateway = gateway_factory({"kfstack-iris-ns.example.com": 2, "kfstack-mnist-ns.example.com": 0})
    models._await_answers([gateway.endpoint("kfstack-iris"), gateway.endpoint("kfstack-mnist")], "tok", timeout=10)
    assert [host for host, _, _ in gateway.calls] == ["kfstack-iris-ns.example.com", "kfstack-mnist-ns.example.com",
                                                      "kfstack-iris-ns.example.com", "kfstack-iris-ns.example.com"]
    assert {(path, auth) for _, path, auth in gateway.calls} == {
        ("/v1/models/kfstack-iris", "Bearer tok"), ("/v1/models/kfstack-mnist", "Bearer tok")}


def test_a_model_that_never_answers_is_named_with_its_last_answer(monkeypatch: pytest.MonkeyPatch,
        gateway_factory: Callable[[dict[str, int | None]], ModelGateway]) -> None:
    monkeypatch.setattr(models, "ISVC_POLL_S", 0.01)
    gateway = gateway_factory({"kfstack-iris-ns.example.com": None, "kfstack-mnist-ns.example.com": 0})
    with pytest.raises(WaitTimeout) as timed_out:
        models._await_answers([gateway.endpoint("kfstack-iris"), gateway.endpoint("kfstack-mnist")], "tok",
                              timeout=0.2)
    assert "kfstack-iris, kfstack-mnist to answer through the gateway" in str(timed_out.value)
    assert timed_out.value.last == {"kfstack-iris": "502: <html>502 Bad Gateway</html>"}
