"""T2: `kfstack conformance` end to end on a simulated cluster, with a check made to fail on purpose.

Three runs against one stack: (1) `--twice --keep`: up, the planted check fails, teardown and its
verification, a second up on the cleaned cluster, kept; (2) `--rerun-failed --keep` runs only the
failed check, which fails again; (3) once the object the check wants exists, `--rerun-failed` runs
it alone, it passes, and the teardown deletes the cluster. Then the history page of the three.
"""

from __future__ import annotations

import contextlib
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config
from pulumi import automation as auto

from infra.automation import TempStack, temp_stack
from infra.cli import main as kfstack
from infra.conformance.history import History
from infra.conformance.record import RunRecord
from infra.names import unique_name

pytestmark = [pytest.mark.sim, pytest.mark.slow]

PLANTED = '''"""Checks the conformance test plants: one passes, one fails until its ConfigMap exists."""
import yaml
from kubernetes import client, config

from smoke_tests.stack_outputs import read_stack_outputs


def _core(kf_settings):
    outputs = read_stack_outputs(kf_settings.stack)
    return client.CoreV1Api(config.new_client_from_config_dict(yaml.safe_load(outputs.kubeconfig)))


def test_kubeflow_namespace_exists(kf_settings):
    assert "kubeflow" in {n.metadata.name for n in _core(kf_settings).list_namespace().items}


def test_planted_configmap_exists(kf_settings):
    names = {c.metadata.name for c in _core(kf_settings).list_namespaced_config_map("kubeflow").items}
    assert "kfstack-planted" in names, "planted check: ConfigMap kubeflow/kfstack-planted is missing"
'''


def sim_config(cluster: str, components: str = "core") -> dict[str, Any]:
    return {"devStack": True, "cluster": {"provider": "sim", "name": cluster, "sim": {"nodes": 1}},
            "kubeflow": {"release": "v1.11.0", "components": components},
            "storage": {"mode": "static", "defaultClass": "kf-static"}}


@contextlib.contextmanager
def conformance_stack(base: Path, manifests: Path, prefix: str, components: str,
                      monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TempStack, str]]:
    """A stack in its own project directory and backend; whatever happens, nothing is left."""
    ts = temp_stack(base, prefix=prefix, env={"KFSTACK_MANIFESTS": str(manifests)})
    cluster = unique_name("kfc")
    ts.set_config(sim_config(cluster, components))
    monkeypatch.setenv("KFSTACK_MANIFESTS", str(manifests))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", ts.env["PULUMI_CONFIG_PASSPHRASE"])
    try:
        yield ts, cluster
    finally:
        with contextlib.suppress(auto.CommandError):
            ts.stack.destroy()
        from infra.clusters.sim import SimClusterProvider

        if SimClusterProvider().cluster_exists({"name": cluster}):
            SimClusterProvider().delete_cluster({"name": cluster})
        ts.stack.workspace.remove_stack(ts.name, force=True)


def _toolchain_or_skip() -> None:
    from infra.toolchain import ToolMissingError, tool_path

    try:
        for tool in ("pulumi", "kwokctl", "kube-apiserver", "etcd", "kustomize"):
            tool_path(tool)
    except ToolMissingError as exc:
        pytest.skip(f"NOT RUN: the simulated cluster needs the pinned toolchain: {exc}")


def _latest(history: Path, stack: str) -> RunRecord:
    with History.open(history) as hist:
        record = hist.latest(stack)
    assert record is not None
    return record


def _run_dir(reports: Path, record: RunRecord) -> Path:
    return reports / record.run_id


def _steps(record: RunRecord) -> dict[str, str]:
    return {s.name: s.status for s in record.steps}


def test_conformance_end_to_end_with_a_planted_failure(tmp_path: Path, manifests_tree: Path,
                                                       monkeypatch: pytest.MonkeyPatch):
    _toolchain_or_skip()
    checks = tmp_path / "planted"
    checks.mkdir()
    (checks / "test_planted.py").write_text(PLANTED)
    history, reports = tmp_path / "history.sqlite", tmp_path / "reports"
    with conformance_stack(tmp_path / "stack", manifests_tree, "t2c", "core", monkeypatch) as (ts, cluster):
        common = ["conformance", "--stack", ts.name, "--project-dir", str(ts.work_dir), "--history", str(history),
                  "--report-dir", str(reports)]

        # (1) Everything, twice; the planted check fails: exit status 6 (smoke).
        assert kfstack([*common, "--checks", str(checks), "--twice", "--keep"]) == 6
        first = _latest(history, ts.name)
        run_dir = _run_dir(reports, first)
        assert _steps(first) == {"doctor": "passed", "up": "passed", "smoke": "failed", "teardown": "passed",
                                 "teardown-verification": "passed", "second-up": "passed",
                                 "second-teardown": "skipped"}
        assert (first.failed_step, first.exit_code) == ("smoke", 6)
        assert {c.id.rsplit("/", 1)[-1]: c.outcome for c in first.checks} == {
            "test_planted.py::test_kubeflow_namespace_exists": "passed",
            "test_planted.py::test_planted_configmap_exists": "failed"}
        failed_id = next(c.id for c in first.checks if c.failed)
        # The report names it: summary, record, JUnit, and the diagnostics bundle.
        summary = (run_dir / "summary.md").read_text()
        assert f"`{failed_id}`: " in summary.split("## Failed checks")[1]
        assert "ConfigMap kubeflow/kfstack-planted is missing" in summary
        record_json = json.loads((run_dir / "record.json").read_text())
        assert record_json["exit_code"] == 6 and record_json["stack"] == ts.name
        assert record_json["release"] == "v1.11.0" and record_json["tools"]["pulumi"] == "v3.259.0"
        failures = list((run_dir / "diagnostics" / "smoke" / "failures").glob("*test_planted_configmap_exists*"))
        assert len(failures) == 1 and "kfstack-planted is missing" in failures[0].read_text()
        junit_cases = ET.parse(run_dir / "junit" / "smoke.xml").getroot().iter("testcase")
        assert sorted(str(c.get("name")) for c in junit_cases) == ["test_kubeflow_namespace_exists",
                                                             "test_planted_configmap_exists"]
        # Phases of both ups, from the engine's events, and the per-resource timeline.
        for up in ("up", "second-up"):
            assert {"cluster", "base", "foundation", "applications"} <= set(first.phases[up])
            assert {row["phase"] for row in first.timelines[up]} >= {"cluster", "base", "applications"}
        assert first.teardown_left == []

        # (2) Against the kept (second) stack: only the failed check runs, and fails again.
        assert kfstack([*common, "--rerun-failed", "--keep"]) == 6
        second = _latest(history, ts.name)
        assert [(c.id, c.outcome) for c in second.checks] == [(failed_id, "failed")]
        assert _steps(second)["up"] == "skipped"
        cases = list(ET.parse(_run_dir(reports, second) / "junit" / "smoke.xml").getroot().iter("testcase"))
        assert [c.get("name") for c in cases] == ["test_planted_configmap_exists"]

        # (3) Give the check what it wants; it alone runs, passes, and the stack is torn down.
        kubeconfig = yaml.safe_load(ts.stack.outputs()["kubeconfig"].value)
        core = client.CoreV1Api(kube_config.new_client_from_config_dict(kubeconfig))
        core.create_namespaced_config_map("kubeflow", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="kfstack-planted")))
        assert kfstack([*common, "--rerun-failed"]) == 0
        third = _latest(history, ts.name)
        assert [(c.id, c.outcome) for c in third.checks] == [(failed_id, "passed")]
        assert _steps(third)["teardown"] == "passed" and _steps(third)["teardown-verification"] == "passed"
        from infra.clusters.sim import SimClusterProvider

        assert not SimClusterProvider().cluster_exists({"name": cluster})
        assert (ts.stack.export_stack().deployment or {}).get("resources") in (None, [])

    # The history page of the three runs says the same.
    page_path = tmp_path / "report.html"
    assert kfstack(["report", "--history", str(history), "-o", str(page_path)]) == 0
    page = page_path.read_text()
    row = next(r for r in page.split("<h2>Checks over runs</h2>")[1].split("<tr>") if failed_id in r)
    assert [("failed" in c, "passed" in c) for c in row.split("<td>")[2:]] == [(True, False), (True, False),
                                                                               (False, True)]
    # The latest run with a `pulumi up` is the first (the re-runs brought nothing up).
    assert f"Timeline of the latest pulumi up (run {first.run_id}, second-up)" in page
