"""Every stack file renders the objects recorded in tests/data/stack-renders.json (tier T1).

A refactoring must leave what each stack applies byte-identical; a change that means to alter it
updates the record in the same commit (tests/stack_renders.py says how), so the diff shows it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.stack_renders import RECORD, STACK_FILES, summary

pytestmark = pytest.mark.render


def test_the_record_covers_every_stack_file() -> None:
    assert sorted(json.loads(RECORD.read_text())) == [p.name for p in STACK_FILES]


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_the_stack_renders_what_is_recorded(path: Path, manifests_tree: Path) -> None:
    recorded = json.loads(RECORD.read_text()).get(path.name)
    assert recorded is not None, f"{path.name} has no record: python -m tests.stack_renders"
    now = summary(path, manifests_tree)
    changed = sorted(kind for kind in {*recorded["kinds"], *now["kinds"]}
                     if recorded["kinds"].get(kind) != now["kinds"].get(kind))
    assert (now["objects"], changed) == (recorded["objects"], []), (
        f"{path.name} renders other objects than recorded: {now['objects']} objects "
        f"(recorded {recorded['objects']}), kinds changed: {changed}. If that is intended, "
        "update the record in the same commit (see tests/stack_renders.py)")
    assert now["yaml"] == recorded["yaml"], f"{path.name}: same objects, other YAML (order or formatting)"
