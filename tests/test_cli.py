"""kfstack's render and doctor commands, run as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.auth.passwords import verify
from infra.config import UPSTREAM_DEFAULT_PASSWORD
from tests.helpers import REPO


def kfstack(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **(env or {})}, timeout=600, check=False)


@pytest.mark.render
def test_render_writes_the_stacks_objects(tmp_path: Path, manifests_tree: Path):
    out = tmp_path / "sim.yaml"
    result = kfstack("render", "--stack", "sim", "--manifests", str(manifests_tree), "-o", str(out))
    assert result.returncode == 0, result.stderr
    objects = [o for o in yaml.safe_load_all(out.read_text()) if o]
    assert f"wrote {len(objects)} objects of Kubeflow v1.11.0" in result.stderr
    assert not [o for o in objects if o["kind"].endswith("WebhookConfiguration")]  # sim adjustments
    text = out.read_text()
    assert UPSTREAM_DEFAULT_PASSWORD not in text
    [secret] = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "dex-passwords"]
    assert verify(UPSTREAM_DEFAULT_PASSWORD, secret["stringData"]["DEX_USER_PASSWORD"])


def test_render_of_a_stack_missing_secrets_names_the_keys(manifests_tree: Path):
    result = kfstack("render", "--stack", "minikube", "--manifests", str(manifests_tree))
    assert result.returncode == 2
    assert "kubeflow-stacks:auth.users = None: list at least one user" in result.stderr
    assert "kubeflow-stacks:auth.oidcClient.secret = None: set one with" in result.stderr


def test_render_of_an_unknown_stack_lists_the_stacks():
    result = kfstack("render", "--stack", "nope")
    assert result.returncode != 0
    assert "stacks: aks, dev, eks, existing, gke, kind-local, minikube, sim" in result.stderr


def test_doctor_reports_each_check_with_a_fix():
    result = kfstack("doctor")
    lines = result.stdout.splitlines()
    assert any(line.split()[1:2] == ["memory"] for line in lines if line[:4] in ("ok  ", "warn", "FAIL"))
    assert any("fs.inotify.max_user_watches" in line for line in lines)
    for i, line in enumerate(lines):
        if line.startswith(("warn", "FAIL")):
            assert lines[i + 1].strip().startswith("fix: "), line
    failed = [line for line in lines if line.startswith("FAIL")]
    assert result.returncode == (1 if failed else 0)
