"""The suite's InferenceServices are awaited together (T0): one poll reads every one not yet Ready,
a Ready one is not read again, each one's host comes back, and a timeout names those not Ready with
what they last showed. The API is a fake answering as KServe's status does."""

from __future__ import annotations

from typing import Any

import pytest

from smoke_tests.fixtures import models
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
