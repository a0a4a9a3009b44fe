"""T2: the upgrade from v1.10.2 to v1.11.0 on a simulated cluster, through `kfstack conformance
--upgrade-from`.

v1.11.0 replaces MinIO with SeaweedFS: upstream's render no longer has MinIO's claim and volume, so
the update would delete the pipelines' artifact store. The first run must stop there, before
anything changes, naming them; the second, on the kept stack and with `--allow-replace`, goes
through.

What the upgrade must show (each is a check in the run's record, with its evidence): the preview
lists the changes; no claim, volume, StatefulSet or data-holding namespace is replaced or deleted;
CRDs are updated in place and a custom resource survives; objects v1.11.0 dropped are deleted; a
second profile, objects in its namespace and a custom resource are intact; a no-op up changes
nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config

from infra.cli import main as kfstack
from infra.conformance.history import History
from tests.helpers import SHARED_MANIFESTS
from tests.test_conformance_sim import _toolchain_or_skip, conformance_stack

pytestmark = [pytest.mark.sim, pytest.mark.slow]

PREVIOUS = Path(os.environ.get("KFSTACK_MANIFESTS_PREVIOUS", SHARED_MANIFESTS.parent / "v1.10.2"))
PASSING = '''def test_stack_outputs_name_the_release(kf_settings):
    from smoke_tests.stack_outputs import read_stack_outputs

    assert read_stack_outputs(kf_settings.stack).kubeflow_version == "v1.11.0"
'''
UPGRADE_CHECKS = ("preview-lists-changes", "no-data-replaced-or-deleted", "crds-updated-in-place",
                  "user-state-intact", "removed-objects-deleted", "no-op-up-after")


def test_upgrade_from_the_previous_release(tmp_path: Path, manifests_tree: Path, monkeypatch: pytest.MonkeyPatch):
    _toolchain_or_skip()
    if not (PREVIOUS / "example").is_dir():
        pytest.skip(f"NOT RUN: needs the v1.10.2 manifests tree: set KFSTACK_MANIFESTS_PREVIOUS (tried {PREVIOUS})")
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "test_release.py").write_text(PASSING)
    history, reports = tmp_path / "history.sqlite", tmp_path / "reports"
    with conformance_stack(tmp_path / "stack", manifests_tree, "t2u", "full", monkeypatch) as (ts, _cluster):
        command = ["conformance", "--stack", ts.name, "--project-dir", str(ts.work_dir), "--upgrade-from", "v1.10.2",
                   "--from-manifests", str(PREVIOUS), "--checks", str(checks), "--keep", "--history", str(history),
                   "--report-dir", str(reports)]

        # (1) The update would delete MinIO's claim and volume: refused, exit status 5, nothing changed.
        assert kfstack(command) == 5
        with History.open(history) as hist:
            refused = hist.latest(ts.name)
        assert refused is not None
        steps = {s.name: s for s in refused.steps}
        assert [steps[n].status for n in ("up-from", "user-state", "upgrade")] == ["passed", "passed", "failed"]
        for name in ("delete PersistentVolumeClaim kubeflow/minio-pvc", "delete PersistentVolume kubeflow-minio-pvc",
                     "Nothing was changed", "--allow-replace"):
            assert name in steps["upgrade"].detail
        preview = (reports / refused.run_id / "upgrade-preview.md").read_text()
        assert preview.startswith("**Refused:**")
        assert "| delete | PersistentVolumeClaim | `kubeflow/minio-pvc` |" in preview
        assert ts.stack.outputs()["kubeflowVersion"].value == "v1.10.2"
        kubeconfig = yaml.safe_load(ts.stack.outputs()["kubeconfig"].value)
        core = client.CoreV1Api(kube_config.new_client_from_config_dict(kubeconfig))
        minio = core.read_namespaced_persistent_volume_claim("minio-pvc", "kubeflow").metadata.uid
        assert {"smoke", "teardown"} <= {s.name for s in refused.steps if s.status == "skipped"}

        # (2) Allowed explicitly, on the kept stack (its up-from changes nothing): the upgrade goes through.
        code = kfstack([*command, "--allow-replace"])
        with History.open(history) as hist:
            record = hist.latest(ts.name)
        assert record is not None and record.run_id != refused.run_id
        run_dir = reports / record.run_id
        upgrade = {c.id.removeprefix("upgrade::"): c for c in record.checks if c.id.startswith("upgrade::")}
        assert {k: c.outcome for k, c in upgrade.items()} == dict.fromkeys(UPGRADE_CHECKS, "passed"), \
            {k: c.message for k, c in upgrade.items() if c.failed}
        assert code == 0, (run_dir / "summary.md").read_text()
        assert [s.name for s in record.steps if s.status == "passed"] == [
            "doctor", "up-from", "user-state", "upgrade", "upgrade-checks", "smoke"]
        assert record.phases["up-from"] and record.phases["upgrade"]
        assert (record.upgrade_from, record.release) == ("v1.10.2", "v1.11.0")
        # What was allowed is what went; every other data-holding object kept its uid.
        assert upgrade["no-data-replaced-or-deleted"].message.endswith(
            "deleted as allowed by --allow-replace: PersistentVolume kubeflow-minio-pvc, "
            "PersistentVolumeClaim kubeflow/minio-pvc")
        assert minio not in {c.metadata.uid for c in core.list_namespaced_persistent_volume_claim("kubeflow").items}
        # The preview listed what changes: the training-operator goes, the trainer comes.
        preview = (run_dir / "upgrade-preview.md").read_text()
        assert "| delete | Deployment | `kubeflow/training-operator` |" in preview
        assert "| create | Deployment | `kubeflow-system/kubeflow-trainer-controller-manager` |" in preview
        assert "object(s) of v1.10.2 that v1.11.0 dropped are deleted" in upgrade["removed-objects-deleted"].message
        assert "CRDs both releases ship were changed, all in place" in upgrade["crds-updated-in-place"].message
        assert (run_dir / "junit" / "upgrade.xml").is_file()
        assert ts.stack.outputs()["kubeflowVersion"].value == "v1.11.0"
