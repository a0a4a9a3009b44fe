"""T2: the upgrade from v1.10.2 to v1.11.0 on a simulated cluster, through `kfstack conformance
--upgrade-from`, then the data guard refusing an update that would replace a claim.

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
from infra.conformance.upgrade import DataLossRefused, guarded_up
from tests.helpers import SHARED_MANIFESTS
from tests.test_conformance_sim import _toolchain_or_skip, conformance_stack, sim_config

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
    with conformance_stack(tmp_path / "stack", manifests_tree, "t2u", "full", monkeypatch) as (ts, cluster):
        code = kfstack(["conformance", "--stack", ts.name, "--project-dir", str(ts.work_dir),
                        "--upgrade-from", "v1.10.2", "--from-manifests", str(PREVIOUS), "--checks", str(checks),
                        "--keep", "--history", str(history), "--report-dir", str(reports)])
        with History.open(history) as hist:
            record = hist.latest(ts.name)
        assert record is not None
        run_dir = reports / record.run_id
        upgrade = {c.id.removeprefix("upgrade::"): c for c in record.checks if c.id.startswith("upgrade::")}
        assert {k: c.outcome for k, c in upgrade.items()} == dict.fromkeys(UPGRADE_CHECKS, "passed"), \
            {k: c.message for k, c in upgrade.items() if c.failed}
        assert code == 0, (run_dir / "summary.md").read_text()
        assert [s.name for s in record.steps if s.status == "passed"] == [
            "doctor", "up-from", "user-state", "upgrade", "upgrade-checks", "smoke"]
        assert (record.upgrade_from, record.release) == ("v1.10.2", "v1.11.0")
        # The preview listed what changes: the training-operator goes, the trainer comes.
        preview = (run_dir / "upgrade-preview.md").read_text()
        assert "| delete | Deployment | `kubeflow/training-operator` |" in preview
        assert "| create | Deployment | `kubeflow-system/kubeflow-trainer-controller-manager` |" in preview
        assert "object(s) of v1.10.2 that v1.11.0 dropped are deleted" in upgrade["removed-objects-deleted"].message
        assert {"up-from", "upgrade"} <= set(record.phases)
        assert (run_dir / "junit" / "upgrade.xml").is_file()

        # The guard: a storage class change would replace every claim. Refused before anything changes.
        kubeconfig = yaml.safe_load(ts.stack.outputs()["kubeconfig"].value)
        core = client.CoreV1Api(kube_config.new_client_from_config_dict(kubeconfig))
        claims = lambda: {c.metadata.name: c.metadata.uid  # noqa: E731
                          for c in core.list_namespaced_persistent_volume_claim("kubeflow").items}
        before = claims()
        state_before = ts.stack.export_stack().deployment["resources"]
        raw = sim_config(cluster, "full")
        raw["storage"]["defaultClass"] = "kf-static-2"
        raw["kubeflow"]["manifests"] = str(manifests_tree)
        ts.set_config(raw)
        with pytest.raises(DataLossRefused) as info:
            guarded_up(ts.stack, allow_data_loss=False, parallel=64, on_output=lambda _line: None)
        message = str(info.value)
        assert "replace PersistentVolumeClaim kubeflow/katib-mysql" in message
        assert "Nothing was changed" in message and "--allow-replace" in message
        assert claims() == before
        assert ts.stack.export_stack().deployment["resources"] == state_before
