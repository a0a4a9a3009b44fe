"""The conformance command's parts that need no cluster: reading pytest's JUnit back into checks
(and running one again by its id), what a teardown must look for, the data guard's verdicts, the
run's workspace, the summary, the upgrade's checks, and the command line's usage errors."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest
import yaml
from pulumi import automation as auto

from infra.cli import main as kfstack
from infra.conformance.data_guard import Plan, PlannedChange, data_loss, data_namespaces
from infra.conformance.objects import ObjectRef, all_refs, objects_to_check
from infra.conformance.record import Check, RunRecord, Step, read_junit
from infra.conformance.session import Run
from infra.conformance.summary import summary_markdown
from infra.conformance.timeline import phase_of_step, urn_type_and_name
from infra.conformance.upgrade_checks import CHECKS, Before, Upgraded, check_name, preview_lists_changes, run_check
from infra.conformance.workspace import file_backend_dir, make_workspace
from infra.errors import UsageError
from tests.helpers import REPO

SAMPLE_TESTS = '''
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

def test_ok():
    pass

def test_planted():
    assert 1 == 2, "planted failure"

@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n == 1

class TestGroup:
    def test_inside(self):
        pass

def test_error(broken):
    pass

def test_skipped():
    pytest.skip("NOT RUN: no cluster here")
'''


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "junit_family=xunit1",
                           "--rootdir", str(tmp_path), *args], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, check=False)


def test_junit_read_back_into_checks_that_can_be_run_again(tmp_path: Path):
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "test_sample.py").write_text(SAMPLE_TESTS)
    _pytest(tmp_path, "checks", "--junitxml", str(tmp_path / "junit.xml"))
    checks = {c.id: c for c in read_junit(tmp_path / "junit.xml", tmp_path)}
    f = "checks/test_sample.py"
    assert {k: c.outcome for k, c in checks.items()} == {
        f"{f}::test_ok": "passed", f"{f}::test_planted": "failed", f"{f}::test_param[1]": "passed",
        f"{f}::test_param[2]": "failed", f"{f}::TestGroup::test_inside": "passed", f"{f}::test_error": "error",
        f"{f}::test_skipped": "skipped"}
    assert "planted failure" in checks[f"{f}::test_planted"].message
    assert "NOT RUN: no cluster here" in checks[f"{f}::test_skipped"].message
    # What --rerun-failed passes to pytest: the failed checks' absolute paths and ids, from anywhere.
    failed = [c for c in checks.values() if c.failed]
    ids = [c.path + c.id[c.id.index("::"):] for c in failed]
    _pytest(tmp_path, *ids, "--junitxml", str(tmp_path / "again.xml"))
    again = read_junit(tmp_path / "again.xml", tmp_path)
    assert sorted(c.id for c in again) == sorted(c.id for c in failed)


def test_missing_junit_means_no_checks(tmp_path: Path):
    assert read_junit(tmp_path / "none.xml", tmp_path) == []


def _res(type_: str, name: str, namespace: str | None = None) -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"type": type_, "urn": f"urn:pulumi:s::p::{type_}::{name}", "outputs": {"metadata": meta}}


RBAC_V1 = "rbac.authorization.k8s.io/v1"


def test_teardown_looks_for_cluster_scoped_objects_crds_namespaces_and_profiles():
    resources = [
        {"type": "pulumi:pulumi:Stack", "urn": "x"},
        {"type": "pulumi:providers:kubernetes", "urn": "p", "outputs": {}},
        _res("kubernetes:core/v1:Namespace", "kubeflow"),
        _res("kubernetes:apps/v1:Deployment", "ml-pipeline", "kubeflow"),  # goes with its namespace
        _res("kubernetes:core/v1:ConfigMap", "kf-extra", "default"),  # in a namespace the stack does not own
        _res("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "kubeflow-admin"),
        _res("kubernetes:admissionregistration.k8s.io/v1:ValidatingWebhookConfiguration", "katib.kubeflow.org"),
        {"type": "pulumi-python:dynamic:Resource", "urn": "urn:pulumi:s::p::kubeflow-stacks:x$"
         "pulumi-python:dynamic:Resource::kubeflow-crds",
         "outputs": {"digests": {"profiles.kubeflow.org": "a", "notebooks.kubeflow.org": "b"}}},
        {"type": "pulumi-python:dynamic:Resource", "urn": "urn:pulumi:s::p::kubeflow-stacks:x$"
         "pulumi-python:dynamic:Resource::kubeflow-rbac",
         "outputs": {"members": {  # infra/object_set.py
             "rbac.authorization.k8s.io/ClusterRole:kubeflow-edit": {"apiVersion": RBAC_V1, "digest": "c"},
             "rbac.authorization.k8s.io/RoleBinding:default/kf-reader": {"apiVersion": RBAC_V1, "digest": "d"},
             "rbac.authorization.k8s.io/RoleBinding:kubeflow/ml-pipeline": {"apiVersion": RBAC_V1, "digest": "e"}}}},
    ]
    refs = objects_to_check(resources, profiles=["kubeflow-alice-example-org"])
    assert [str(r) for r in refs] == [
        "Namespace kubeflow", "ConfigMap default/kf-extra", "ClusterRole kubeflow-admin",
        "ValidatingWebhookConfiguration katib.kubeflow.org",
        "CustomResourceDefinition notebooks.kubeflow.org", "CustomResourceDefinition profiles.kubeflow.org",
        "ClusterRole kubeflow-edit", "RoleBinding default/kf-reader",
        "Namespace kubeflow-alice-example-org"]
    assert refs[1] == ObjectRef("v1", "ConfigMap", "kf-extra", "default")
    assert ObjectRef(RBAC_V1, "RoleBinding", "kf-reader", "default") in refs
    # For uid comparisons, every object, the set's namespaced members too.
    assert "RoleBinding kubeflow/ml-pipeline" in [str(r) for r in all_refs(resources)]


def _plan(*changes: tuple[auto.OpType, str, str]) -> Plan:
    return Plan([PlannedChange(op.value, f"urn:pulumi:s::p::{t}::{name}", t) for op, t, name in changes])


def test_data_guard_flags_only_what_destroys_data():
    ns = data_namespaces([_res("kubernetes:core/v1:PersistentVolumeClaim", "katib-mysql", "kubeflow"),
                          _res("kubernetes:apps/v1:StatefulSet", "metadata-db", "kubeflow-data"),
                          _res("kubernetes:apps/v1:Deployment", "web", "web")])
    assert ns == {"kubeflow", "kubeflow-data"}
    pvc, pv, sts, nsk, dep = ("kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:core/v1:PersistentVolume",
                              "kubernetes:apps/v1:StatefulSet", "kubernetes:core/v1:Namespace",
                              "kubernetes:apps/v1:Deployment")
    plan = _plan((auto.OpType.UPDATE, pvc, "kubeflow/katib-mysql"),  # a resize: kept
                 (auto.OpType.REPLACE, pvc, "kubeflow/mysql-pv-claim"),
                 (auto.OpType.DELETE_REPLACED, pv, "kubeflow-mysql"),
                 (auto.OpType.DELETE, sts, "kubeflow-data/metadata-db"),
                 (auto.OpType.DELETE, nsk, "kubeflow"),
                 (auto.OpType.DELETE, nsk, "training-operator"),  # holds no data
                 (auto.OpType.REPLACE, dep, "kubeflow/ml-pipeline"))
    assert [str(c) for c in data_loss(plan, ns)] == [
        "replace PersistentVolumeClaim kubeflow/mysql-pv-claim", "delete-replaced PersistentVolume kubeflow-mysql",
        "delete StatefulSet kubeflow-data/metadata-db", "delete Namespace kubeflow"]



def test_upgrade_checks_are_named_functions_recorded_with_their_evidence():
    assert [check_name(c) for c in CHECKS] == [
        "preview-lists-changes", "no-data-replaced-or-deleted", "crds-updated-in-place", "user-state-intact",
        "removed-objects-deleted", "no-op-up-after"]  # the ids the record, the history and the report keep
    nothing = Upgraded(run=cast(Run, None), plan=Plan(), before=Before({}, [], {}), after=[], api=None)
    failed = run_check(preview_lists_changes, nothing)
    assert (failed.id, failed.outcome) == ("upgrade::preview-lists-changes", "failed")
    assert failed.message == "AssertionError: the preview listed no change between the releases"
    changed = _plan((auto.OpType.UPDATE, "kubernetes:apps/v1:Deployment", "kubeflow/ml-pipeline"))
    changed.summary = {"update": 1, "same": 500}
    passed = run_check(preview_lists_changes, dataclasses.replace(nothing, plan=changed))
    assert (passed.outcome, passed.message) == ("passed", "1 change(s): same 500, update 1")

def test_timeline_steps_land_in_their_part_of_the_release():
    urn = "urn:pulumi:t::kubeflow-stacks::kubeflow-stacks:kubeflow:KubeflowDeployment$kubernetes:apps/v1:Deployment" \
          "::kubeflow/ml-pipeline"
    assert urn_type_and_name(urn) == ("kubernetes:apps/v1:Deployment", "kubeflow/ml-pipeline")
    assert phase_of_step("kubernetes:apps/v1:Deployment", "kubeflow/ml-pipeline") == "applications"
    assert phase_of_step("kubernetes:core/v1:Namespace", "kubeflow") == "base"
    assert phase_of_step("kubernetes:cert-manager.io/v1:Certificate", "kubeflow/x") == "certificates"
    assert phase_of_step("pulumi-python:dynamic:Resource", "kubeflow-crds") == "foundation"
    assert phase_of_step("pulumi-python:dynamic:Resource", "kubeflow-crds-cert-manager.io") == "foundation"
    assert phase_of_step("pulumi-python:dynamic:Resource", "kubeflow-admission-cert-manager-cert-manager-webhook") \
        == "webhooks"
    assert phase_of_step("pulumi:providers:kubernetes", "k8s") == "cluster"


def test_workspace_runs_the_project_program_with_a_copy_of_the_stack_file(tmp_path: Path):
    work = make_workspace(REPO, "sim", tmp_path / "ws")
    settings = yaml.safe_load((work / "Pulumi.yaml").read_text())
    assert settings["main"] == str(REPO)
    assert settings["runtime"]["options"]["virtualenv"] == str(REPO / ".venv")
    assert "stackConfigDir" not in settings
    assert (work / "Pulumi.sim.yaml").read_text() == (REPO / "stacks" / "Pulumi.sim.yaml").read_text()
    with pytest.raises(UsageError, match=r"--stack nope: no stack file .*stacks: .*sim"):
        make_workspace(REPO, "nope", tmp_path / "ws2")


def test_the_state_directory_comes_from_the_backend_url_the_run_uses(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    # The project's own backend (`file://~/...`), the user's variable, then the run's own.
    assert file_backend_dir(REPO, {}) == Path.home() / ".cache" / "kubeflow-stacks" / "state"
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path}/user")
    assert file_backend_dir(REPO, {}) == tmp_path / "user"
    assert file_backend_dir(REPO, {"PULUMI_BACKEND_URL": f"file://{tmp_path}/run"}) == tmp_path / "run"
    assert file_backend_dir(REPO, {"PULUMI_BACKEND_URL": "s3://bucket/prefix"}) is None


def test_summary_puts_the_failed_check_and_what_was_left_first(tmp_path: Path):
    record = RunRecord(stack="sim", release="v1.11.0", run_id="20261201T030000Z-sim", started="s",
                       steps=[Step("up", "passed", 80.0), Step("smoke", "failed", 9.0, "1 check(s) failed")],
                       phases={"up": {"cluster": 10.0, "applications": 40.0}},
                       checks=[Check("a.py::test_ok", "passed", 1.0), Check("a.py::test_planted", "failed", 2.0,
                                                                           "AssertionError: planted")],
                       teardown_left=["Namespace kubeflow (Terminating)"])
    record.fail("smoke")
    record.finish()
    text = summary_markdown(record, tmp_path)
    assert text.startswith("# Conformance run 20261201T030000Z-sim: FAILED at step smoke")
    assert "| exit status | 6 |" in text
    failed_section = text.split("## Failed checks")[1].split("##")[0]
    assert "`a.py::test_planted`: AssertionError: planted" in failed_section
    assert "- Namespace kubeflow (Terminating)" in text.split("## Left behind by the teardown")[1]
    assert "| applications | 40.0 |" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--allow-replace"], "--allow-replace applies to --upgrade-from only"),
    (["--from-manifests", "/x"], "--from-manifests needs --upgrade-from RELEASE"),
    (["--in-cluster", "--rerun-failed"], "--in-cluster runs the suite's own checks"),
    (["--in-cluster", "--checks", "smoke_tests/checks/test_login.py"], "--in-cluster runs the suite's own checks"),
])
def test_bad_option_combinations_are_usage_errors(args: list[str], message: str,
                                                  capsys: pytest.CaptureFixture[str]):
    assert kfstack(["conformance", "--stack", "sim", *args]) == 2
    assert message in capsys.readouterr().err


def test_rerun_failed_without_history_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code = kfstack(["conformance", "--stack", "sim", "--rerun-failed", "--history", str(tmp_path / "h.sqlite"),
                    "--report-dir", str(tmp_path / "r")])
    assert code == 2
    assert "--rerun-failed: the history has no run of stack sim" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing created


def test_unknown_stack_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert kfstack(["conformance", "--stack", "nope", "--report-dir", str(tmp_path / "r"),
                    "--history", str(tmp_path / "h.sqlite")]) == 2
    assert "--stack nope: no stack file" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_stack_pulumi_cannot_open_is_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A backend that refuses (no token, no passphrase for the secrets) is the user's to fix: one
    line with Pulumi's own reason, not a traceback; the run's record says so."""
    import infra.conformance.runner as runner
    from infra.conformance.session import ConformanceOptions

    def refused(*_args: object) -> None:
        raise auto.CommandError(auto.CommandResult(
            stdout="", stderr="error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions",
            code=255))

    monkeypatch.setattr(runner, "open_stack", refused)
    monkeypatch.setattr(runner.doctor, "step", lambda run: None)  # the host's checks are not this test's
    opts = ConformanceOptions(stack="sim", report_root=tmp_path / "reports", history=tmp_path / "h.sqlite")
    with pytest.raises(UsageError) as info:
        runner.run_conformance(opts)
    assert str(info.value) == ("stack sim: Pulumi could not open it: error: PULUMI_ACCESS_TOKEN must be set "
                               "for login during non-interactive CLI sessions")
