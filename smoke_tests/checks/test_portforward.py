"""The ingress gateway answers through the supervised port-forward, also after kubectl dies."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from smoke_tests.login import new_http_session
from smoke_tests.wait import wait_until

pytestmark = pytest.mark.portforward

DISCOVERY = "/dex/.well-known/openid-configuration"


def _discovery_status(forward: Any) -> int:
    return new_http_session(forward.url).get(forward.url + DISCOVERY, timeout=10).status_code


def test_gateway_answers_through_forward(gateway_forward: Any) -> None:
    assert _discovery_status(gateway_forward) == 200


def test_forward_restarts_after_kubectl_exits(gateway_forward: Any) -> None:
    before = gateway_forward.pid
    assert before is not None
    os.kill(before, signal.SIGTERM)
    wait_until(lambda: (gateway_forward.pid not in (None, before), gateway_forward.pid),
               timeout=gateway_forward.ready_timeout, interval=0.5, what="kubectl port-forward to restart")
    gateway_forward.wait_ready()
    assert _discovery_status(gateway_forward) == 200
