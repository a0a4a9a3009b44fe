"""T2 (real engine and language host): the project's own errors reach the user as plain Pulumi
errors, the keyed message alone; a real bug still shows its traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from pulumi import automation as auto

from infra.automation import temp_stack
from tests.helpers import require_toolchain

pytestmark = [pytest.mark.sim]


def _preview_error(tmp_path: Path, raw: dict) -> str:
    require_toolchain("pulumi")
    ts = temp_stack(tmp_path, prefix="err")
    try:
        ts.set_config(raw)
        with pytest.raises(auto.CommandError) as info:
            ts.stack.preview(on_output=lambda _: None)
        return str(info.value)
    finally:
        ts.stack.workspace.remove_stack(ts.name, force=True)


def test_a_config_mistake_is_one_keyed_message_without_traceback(tmp_path: Path) -> None:
    text = _preview_error(tmp_path, {"devStack": True, "cluster": {"provider": "sim", "name": "errs"},
                                     "storage": {"mode": "ceph"}})
    assert "kubeflow-stacks:storage.mode = 'ceph': must be one of" in text
    assert "Traceback" not in text
    assert "Program failed with an unhandled exception" not in text


def test_an_unusable_manifests_tree_is_one_message_without_traceback(tmp_path: Path) -> None:
    text = _preview_error(tmp_path, {"devStack": True, "cluster": {"provider": "sim", "name": "errs"},
                                     "kubeflow": {"manifests": str(tmp_path / "no-such-tree")}})
    assert "no-such-tree" in text
    assert "Traceback" not in text
