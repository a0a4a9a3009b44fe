"""T0: names of what tests make (clusters, stacks) cannot meet within a session, by construction."""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import pytest

from infra import names
from infra.names import suffix, unique_name
from tests.helpers import REPO


def test_a_name_is_never_handed_out_twice_even_when_the_random_part_repeats(monkeypatch: pytest.MonkeyPatch):
    """Two fixtures asking at once with the same prefix get different names, even if the random
    source gives the same draw twice (the registry draws again)."""
    draws = itertools.chain(["abc123", "abc123", "abc123", "def456"])
    monkeypatch.setattr(names.secrets, "token_hex", lambda _n: next(draws))
    monkeypatch.setattr(names, "_issued", set())
    first, second = unique_name("kfsim"), unique_name("kfsim")
    assert (first, second) == ("kfsim-abc123", "kfsim-def456")
    assert suffix(second) == "def456"


def test_names_are_prefix_dash_six_hex_and_bad_prefixes_are_refused() -> None:
    assert re.fullmatch(r"kftest-[0-9a-f]{6}", unique_name("kftest"))
    for bad in ("", "Kf", "kf_x", "9kf", "k" * 32):
        with pytest.raises(ValueError, match="name prefix"):
            unique_name(bad)


def test_the_session_fixtures_draw_their_names_from_the_registry() -> None:
    """No test module or the stack helper makes a random name of its own: a `secrets.token_hex` in
    tests/ or infra/automation.py would be a cluster or stack name outside the registry."""
    own = []
    for path in [*sorted((REPO / "tests").glob("*.py")), REPO / "infra" / "automation.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "token_hex" and \
                    Path(path).name != "test_names.py":
                own.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert own == [], "make names with infra.names.unique_name: " + ", ".join(own)
