"""T2: the README's bring-up block, run exactly as written, against the simulated cluster.

A new user's first `pulumi up -s sim` once stopped three times before the program ran (no state
directory, no stack, config values Pulumi demanded). This runs the documented block literally in a
copy of the checkout, with a home of its own (so no stack or state of the user's is touched). Only
the passphrase line is supplied by the test, and offline the manifests tree (KFSTACK_MANIFESTS),
as the README says.

One setting differs, in the copy only: the simulated cluster's name. `stacks/Pulumi.sim.yaml` names
it `kfsim`, and a cluster of that name made by anything else at the same moment (the fresh-machine
test's container running this same test on the same network once did; a user's own `sim` stack
would) collides with this one. The copy's stack file gets a name of this run's own, so two runs can
never share a cluster; the stack `sim` itself lives in a state backend under the test's own
temporary folder, so it is this run's alone too. The block and the stack's other settings are
untouched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from infra.names import unique_name
from tests.helpers import REPO, require_toolchain

pytestmark = [pytest.mark.sim, pytest.mark.slow]

MARKER = "<!-- tests/test_readme.py runs this block"
BLOCK_TIMEOUT_S = 1800


def readme_block(readme: Path) -> str:
    """The fenced bash block right after the marker comment."""
    text = readme.read_text()
    start = text.index(MARKER)
    match = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    assert match, "README: no bash block after the test marker"
    return match.group(1)


def test_readme_block_names_what_the_test_relies_on() -> None:
    block = readme_block(REPO / "README.md")
    assert "pulumi up --yes -s sim" in block and "pulumi destroy --yes -s sim" in block
    assert "pytest smoke_tests --stack sim" in block
    assert re.search(r"^export PULUMI_CONFIG_PASSPHRASE=", block, re.M)


def _checkout_copy(dest: Path) -> Path:
    """The tracked files of this checkout, and its .venv (linked: the README's commands use it)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True,
                           timeout=60).stdout.decode().split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    (dest / ".venv").symlink_to(REPO / ".venv")
    return dest


def own_cluster_name(checkout: Path) -> str:
    """Gives the copy's `sim` stack a simulated cluster of this run's own (`kfsim-<random>`, short:
    kwokctl prefixes it to its component names) and returns that name."""
    path = checkout / "stacks" / "Pulumi.sim.yaml"
    stack = yaml.safe_load(path.read_text())
    cluster = stack["config"]["kubeflow-stacks:cluster"]
    name = unique_name(cluster["name"])
    cluster["name"] = name
    path.write_text(yaml.safe_dump(stack, sort_keys=False))
    return name


def test_each_copy_s_sim_cluster_is_its_own_and_nothing_else_changes(tmp_path: Path) -> None:
    original = REPO / "stacks" / "Pulumi.sim.yaml"
    names = []
    for copy in (tmp_path / "a", tmp_path / "b"):
        (copy / "stacks").mkdir(parents=True)
        shutil.copy2(original, copy / "stacks" / original.name)
        name = own_cluster_name(copy)
        assert re.fullmatch(r"kfsim-[0-9a-f]{6}", name), name
        expected = yaml.safe_load(original.read_text())
        expected["config"]["kubeflow-stacks:cluster"]["name"] = name
        assert yaml.safe_load((copy / "stacks" / original.name).read_text()) == expected
        names.append(name)
    assert names[0] != names[1]
    assert yaml.safe_load(original.read_text())["config"]["kubeflow-stacks:cluster"]["name"] == "kfsim"


def test_readme_bring_up_block_runs_as_written(tmp_path: Path, manifests_tree: Path) -> None:
    require_toolchain("pulumi", "kwokctl", "kwok", "kube-apiserver", "etcd", "kustomize")
    from infra.paths import cache_root

    block = readme_block(REPO / "README.md")
    # The one line the test supplies itself: the passphrase, from the environment.
    script = re.sub(r"^export PULUMI_CONFIG_PASSPHRASE=.*$", "", block, flags=re.M)
    checkout = _checkout_copy(tmp_path / "checkout")
    cluster = own_cluster_name(checkout)
    home = tmp_path / "home"
    state = tmp_path / "state"
    state.mkdir()
    # Pulumi expands Pulumi.yaml's `file://~` from the account's home, not $HOME: the backend is
    # pointed at the test's own directory so no stack of the user's is touched.
    env = {**os.environ, "HOME": str(home), "KFSTACK_CACHE": str(cache_root()),
           "PULUMI_BACKEND_URL": f"file://{state}",
           "PULUMI_CONFIG_PASSPHRASE": "readme-test", "KFSTACK_MANIFESTS": str(manifests_tree)}
    for key in ("PULUMI_HOME", "PULUMI_ACCESS_TOKEN"):
        env.pop(key, None)
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert "v1.11.0" in output
    assert cluster in output  # the stack's clusterName output: the cluster was this run's own
    # Every step ran: the stack was made, Kubeflow went up, its outputs were read, and destroy
    # deleted everything it had created.
    assert list(state.rglob("sim.json")), output[-2000:]
    created = re.search(r"\+ (\d+) created", output)
    deleted = re.search(r"- (\d+) deleted", output)
    assert created and deleted and created.group(1) == deleted.group(1), output[-3000:]
    assert "Program failed" not in output
    # The smoke suite ran against the simulated stack: what needs no pod passed, the rest NOT RUN.
    summary = re.search(r"=+ (.*(?:passed|failed|skipped).*) in [0-9.]+s", output)
    assert summary and "passed" in summary.group(1), output[-3000:]
    assert "failed" not in summary.group(1) and "error" not in summary.group(1), summary.group(1)
