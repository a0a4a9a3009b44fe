"""T0: the conformance teardown plan reads the stack's cluster through the config's model, so a
stack that relies on every default (kind, named kubeflow) still has its cluster's removal checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.conformance import teardown
from infra.conformance.teardown import plan_from_state, verify_teardown
from tests.helpers import REPO


def test_a_stack_on_every_default_gets_its_cluster_removal_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_from_state({"resources": []}, {"devStack": True}, {})
    assert (plan.provider, plan.cluster_name) == ("kind", "kubeflow")
    looked_up: list[tuple[str, str]] = []

    def still_there(provider: str, name: str) -> bool:  # the cluster lookup (kind get clusters) is T3's
        looked_up.append((provider, name))
        return True

    monkeypatch.setattr(teardown, "cluster_still_there", still_there)
    assert verify_teardown(plan, timeout=0) == ["kind cluster kubeflow"]
    assert looked_up == [("kind", "kubeflow")]


def test_a_provider_section_on_its_defaults_names_the_provider_and_the_default_name() -> None:
    plan = plan_from_state({}, {"cluster": {"provider": "minikube"}}, {})
    assert (plan.provider, plan.cluster_name) == ("minikube", "kubeflow")


@pytest.mark.parametrize("path", sorted((REPO / "stacks").glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_each_stack_files_plan_names_its_cluster(path: Path) -> None:
    config = {k.split(":", 1)[1]: v for k, v in yaml.safe_load(path.read_text())["config"].items()}
    plan = plan_from_state({}, config, {"kubeconfig": "k"})
    assert plan.provider == config["cluster"]["provider"]
    assert plan.cluster_name == config["cluster"].get("name", "kubeflow")


def test_an_existing_clusters_own_kubeconfig_stands_in_for_missing_outputs(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\n")
    config = {"cluster": {"provider": "existing", "existing": {"kubeconfig": str(kubeconfig)}}}
    plan = plan_from_state({}, config, {})
    assert (plan.provider, plan.cluster_name, plan.kubeconfig) == ("existing", "kubeflow", "apiVersion: v1\n")
