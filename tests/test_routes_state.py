"""The routes' ownership record (routes.json) without touching the host's table: holders are
counted per range, a route is removed only with its last holder and only when the project added
it, and a record left by an older version or edited by hand still reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.runtime import routes


@pytest.fixture
def table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """A fake routing table: the blackhole ranges present, changed only through `ip route`."""
    monkeypatch.setenv("KFSTACK_CACHE", str(tmp_path))
    present: set[str] = set()
    monkeypatch.setattr(routes, "_ip", lambda: "ip")
    monkeypatch.setattr(routes, "_conflicts", lambda cidr: [])
    monkeypatch.setattr(routes, "blackhole_present", lambda cidr: cidr in present)

    def ip(argv: list[str], timeout: float) -> None:
        action, cidr = argv[2], argv[4]
        (present.add if action == "add" else present.discard)(cidr)
    monkeypatch.setattr(routes, "run", ip)
    return present


def test_a_route_goes_with_its_last_holder(table: set[str]) -> None:
    assert routes.hold("kind:a", ["10.96.0.0/16"], say=lambda _: None) == ["10.96.0.0/16"]
    assert routes.hold("kind:b", ["10.96.0.0/16"], say=lambda _: None) == []  # already there
    assert routes.holders("10.96.0.0/16") == ["kind:a", "kind:b"]
    assert routes.release("kind:a", say=lambda _: None) == [] and table == {"10.96.0.0/16"}
    assert routes.held_by("kind:b") == ["10.96.0.0/16"] and routes.held_by("kind:a") == []
    assert routes.release("kind:b", say=lambda _: None) == ["10.96.0.0/16"] and table == set()
    assert routes.holders("10.96.0.0/16") == []


def test_a_route_the_project_did_not_add_is_kept(table: set[str]) -> None:
    table.add("10.97.0.0/16")  # someone else's route
    assert routes.hold("kind:a", ["10.97.0.0/16"], say=lambda _: None) == []
    assert routes.release("kind:a", say=lambda _: None) == [] and table == {"10.97.0.0/16"}


def test_a_hand_edited_record_still_reads(table: set[str], tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    (runtime / "routes.json").write_text(json.dumps({"10.98.0.0/16": {"owners": "not a list"},
                                                     "10.99.0.0/16": {"owners": ["kind:x"], "added": True}}))
    table.add("10.99.0.0/16")
    assert routes.holders("10.98.0.0/16") == []
    assert routes.held_by("kind:x") == ["10.99.0.0/16"]
    assert routes.release("kind:x", say=lambda _: None) == ["10.99.0.0/16"] and table == set()
