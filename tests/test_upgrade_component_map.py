"""Component maps per release: the hand-written v1.10.2 map, and maps derived from a tree's own
example/kustomization.yaml, with every path the tree lacks named before kustomize runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from infra.cli import main as kfstack
from infra.config import ConfigError, parse_stack_config
from infra.manifests.components import load_component_map
from infra.manifests.derive import check_paths, derive_component_map
from infra.manifests.render import render
from tests.helpers import SHARED_MANIFESTS, base_raw

PREVIOUS = Path(os.environ.get("KFSTACK_MANIFESTS_PREVIOUS", SHARED_MANIFESTS.parent / "v1.10.2"))


@pytest.fixture(scope="module")
def previous_tree() -> Path:
    if not (PREVIOUS / "example" / "kustomization.yaml").is_file():
        pytest.skip(f"NOT RUN: needs the upstream v1.10.2 manifests tree: set KFSTACK_MANIFESTS_PREVIOUS "
                    f"(tried {PREVIOUS})")
    return PREVIOUS


def fake_tree(root: Path, paths: list[str], example: list[str], components: tuple[str, ...] = ()) -> Path:
    """A tree with a kustomization at each path and an example listing `example`."""
    for p in paths:
        (root / p).mkdir(parents=True, exist_ok=True)
        (root / p / "kustomization.yaml").write_text("resources: []\n")
    (root / "example").mkdir(parents=True, exist_ok=True)
    (root / "example" / "kustomization.yaml").write_text(yaml.safe_dump(
        {"resources": [f"../{p}" for p in example], "components": [f"../{c}" for c in components]}))
    return root


def v1_11_paths() -> list[str]:
    cmap = load_component_map("v1.11.0")
    return [p for paths in cmap.components.values() for p in paths]


PIPELINES_OLD = "applications/pipeline/upstream/env/cert-manager/platform-agnostic-multi-user"
PIPELINES_NEW = "applications/pipeline/upstream/env/cert-manager/multi-user"
REGISTRY = "applications/model-registry/upstream/overlays/db"


def test_derived_map_follows_a_moved_path_drops_a_removed_component_adds_a_new_one(tmp_path: Path):
    paths = [p for p in v1_11_paths() if p not in (PIPELINES_OLD, "applications/trainer/overlays")]
    tree = fake_tree(tmp_path, [*paths, PIPELINES_NEW, REGISTRY], [*paths, PIPELINES_NEW, REGISTRY])
    derived = derive_component_map("v1.12.0", tree)
    assert derived.cmap.release == "v1.12.0"
    assert derived.moved == {"pipelines": (PIPELINES_OLD, PIPELINES_NEW)}
    assert derived.cmap.components["pipelines"] == (PIPELINES_NEW,)
    assert derived.dropped == ["trainer"] and "trainer" not in derived.cmap.components
    assert derived.added == {"model-registry": REGISTRY}
    assert derived.cmap.kustomize_components == ()  # the fake tree has no PSS component


def test_an_ambiguous_move_fails_naming_the_path_and_the_candidates(tmp_path: Path):
    paths = [p for p in v1_11_paths() if p != PIPELINES_OLD]
    other = "applications/pipeline/upstream/env/platform-agnostic"
    tree = fake_tree(tmp_path, [*paths, PIPELINES_NEW, other], [*paths, PIPELINES_NEW, other])
    with pytest.raises(ConfigError) as info:
        derive_component_map("v1.12.0", tree)
    text = str(info.value)
    assert f"component pipelines: {PIPELINES_OLD} is not in this tree" in text
    assert PIPELINES_NEW in text and other in text
    assert "add infra/manifests/releases/v1.12.0.toml" in text


def test_a_hand_written_map_on_the_wrong_tree_names_each_missing_path(previous_tree: Path):
    cmap = load_component_map("v1.11.0")
    with pytest.raises(ConfigError) as info:
        check_paths(previous_tree, cmap, list(cmap.components), "sim")
    problems = [p.fix for p in info.value.problems]
    assert problems == [
        "component trainer: applications/trainer/overlays is not in this tree (moved or removed); "
        "example/kustomization.yaml lists nothing under applications/trainer; point kubeflow.manifests at a "
        "v1.11.0 tree, or update infra/manifests/releases/v1.11.0.toml",
        "component (kustomize component): common/security/PSS/dynamic/baseline is not in this tree (moved or "
        "removed); example/kustomization.yaml lists nothing under common/security; point kubeflow.manifests at "
        "a v1.11.0 tree, or update infra/manifests/releases/v1.11.0.toml"]


def test_v1_10_2_map_is_what_its_tree_derives_from_v1_11_0(previous_tree: Path):
    derived = derive_component_map("v1.10.2", previous_tree, base_release="v1.11.0")
    written = load_component_map("v1.10.2")
    assert derived.cmap.components == written.components
    assert derived.cmap.core == written.core
    assert derived.cmap.kustomize_components == written.kustomize_components
    assert derived.added == {"training-operator": "applications/training-operator/upstream/overlays/kubeflow"}
    check_paths(previous_tree, written, list(written.components), "sim")  # every path is there


def _stack_file(directory: Path, release: str) -> Path:
    raw = {"devStack": True, "cluster": {"provider": "sim", "name": "t"},  # dev: no secrets needed
           "kubeflow": {"release": release, "components": "full"},
           "storage": {"mode": "static", "defaultClass": "kf-static"}}
    (directory / "Pulumi.t.yaml").write_text(yaml.safe_dump(
        {"config": {f"kubeflow-stacks:{k}": v for k, v in raw.items()}}))
    return directory


def test_render_command_reports_a_moved_path_without_a_traceback(tmp_path: Path, previous_tree: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch):
    # No toolchain at all: the layout error must come before kustomize is even looked for.
    monkeypatch.setenv("KFSTACK_CACHE", str(tmp_path / "empty-cache"))
    stacks = _stack_file(tmp_path, "v1.11.0")
    code = kfstack(["render", "--stack", "t", "--manifests", str(previous_tree), "--stacks-dir", str(stacks)])
    err = capsys.readouterr().err
    assert code == 2
    assert "component trainer: applications/trainer/overlays is not in this tree" in err
    assert "Traceback" not in err


@pytest.mark.render
def test_v1_10_2_renders_and_an_unmapped_release_renders_the_same(previous_tree: Path):
    from tests.helpers import require_toolchain

    require_toolchain("kustomize")  # NOT RUN when it is missing; any other failure of the lookup fails
    mapped = render(parse_stack_config("t", base_raw(kubeflow={"release": "v1.10.2"}), {"auth"}), previous_tree)
    kinds = {o["kind"] for o in mapped.objects}
    assert "training-operator" in mapped.components and "trainer" not in mapped.components
    assert {"PyTorchJob"} <= {c["spec"]["names"]["kind"] for c in mapped.find("CustomResourceDefinition")}
    assert {"Deployment", "StatefulSet", "Profile"} <= kinds
    # A patch release with no map of its own: derived from the tree, the same objects.
    derived = render(parse_stack_config("t", base_raw(kubeflow={"release": "v1.10.3"}), {"auth"}), previous_tree)
    assert derived.components == mapped.components
    assert derived.objects == mapped.objects
