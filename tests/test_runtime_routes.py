"""Blackhole routes on the real host routing table (root only): an early connection to a cluster's
service IP fails on this machine, routes are removed with their last holder, and a route the
project did not add is never removed."""

from __future__ import annotations

import errno
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.runtime import host, routes
from smoke_tests.run import run

# Ranges no real network here uses (checked by `hold` itself, which refuses overlaps).
SERVICE = "10.254.250.0/24"
PODS = "10.254.251.0/24"
FOREIGN = "10.254.252.0/24"

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None
                       or "CAP_NET_ADMIN" in host.missing_daemon_capabilities(),
                       reason="NOT RUN: blackhole routes need root with CAP_NET_ADMIN and iproute2 on this host"),
]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("KFSTACK_CACHE", str(tmp_path))
    yield tmp_path
    for cidr in (SERVICE, PODS, FOREIGN):  # leave the host as it was, whatever the test did
        run(["ip", "route", "del", "blackhole", cidr], timeout=10, check=False)


def test_early_connection_to_the_service_ip_fails_here(cache: Path) -> None:
    added = routes.hold("kind:a", [SERVICE, PODS], say=lambda _l: None)
    assert added == [SERVICE, PODS]
    assert routes.blackhole_present(SERVICE)
    with socket.socket() as sock, pytest.raises(OSError) as caught:
        sock.settimeout(5)
        sock.connect(("10.254.250.1", 443))
    # Refused by the local routing table at once, not a timeout waiting on the network.
    assert caught.value.errno in (errno.EINVAL, errno.ENETUNREACH, errno.EHOSTUNREACH), caught.value


def test_routes_go_with_their_last_holder(cache: Path) -> None:
    routes.hold("kind:a", [SERVICE, PODS], say=lambda _l: None)
    assert routes.hold("kind:b", [SERVICE], say=lambda _l: None) == []  # already there
    assert routes.release("kind:a", say=lambda _l: None) == [PODS]
    assert routes.blackhole_present(SERVICE)  # kind:b still holds it
    assert routes.holders(SERVICE) == ["kind:b"] and routes.holders(PODS) == []
    assert routes.release("kind:b", say=lambda _l: None) == [SERVICE]
    assert not routes.blackhole_present(SERVICE)
    assert not routes.blackhole_present(PODS)


def test_a_route_the_project_did_not_add_stays(cache: Path) -> None:
    run(["ip", "route", "add", "blackhole", FOREIGN], timeout=10)
    assert routes.hold("kind:a", [FOREIGN], say=lambda _l: None) == []
    assert routes.release("kind:a", say=lambda _l: None) == []
    assert routes.blackhole_present(FOREIGN)


def test_a_range_overlapping_a_real_network_is_refused(cache: Path) -> None:
    real = next(str(r["dst"]) for r in routes.host_routes()
                if r.get("dst") != "default" and "/" in str(r.get("dst")) and r.get("type") != "blackhole")
    with pytest.raises(routes.RouteError, match="overlaps this host's network"):
        routes.hold("kind:a", [real], say=lambda _l: None)
    assert not routes.blackhole_present(real)


def test_malformed_range_names_itself() -> None:
    with pytest.raises(routes.RouteError, match=r"'10\.96\.0\.1/12' is not a network range"):
        routes.normalise(["10.96.0.1/12"])
