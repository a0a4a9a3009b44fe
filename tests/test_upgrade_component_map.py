"""Component maps per release: the hand-written v1.10.2 map, and maps derived from a tree's own
example/kustomization.yaml, with every path the tree lacks named before kustomize runs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from infra.cli import main as kfstack
from infra.config import ConfigError, parse_stack_config
from infra.manifests import components
from infra.manifests.components import load_component_map
from infra.manifests.derive import check_paths, component_map_for, derive_component_map, selected_paths
from infra.manifests.objects import object_key
from infra.manifests.render import kustomize_build, render
from tests.helpers import SHARED_MANIFESTS, base_raw, require_toolchain

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


# Overlaps: kustomize refuses two selected paths that build the same objects ("may not add resource
# with an already registered id"). Synthetic releases after v1.11.0, each with real objects where
# the overlap is, and empty kustomizations everywhere else.

CM_BASE = "common/cert-manager/base"
CM_ISSUER = "common/cert-manager/kubeflow-issuer/base"
CM_OVERLAY = "common/cert-manager/overlays/kubeflow"
OAUTH2_BASE = "common/oauth2-proxy/base"
OAUTH2_OLD = "common/oauth2-proxy/overlays/m2m-dex-only"
OAUTH2_NEW = "common/oauth2-proxy/overlays/default"
ISTIO_CRDS = "common/istio/istio-crds/base"
ISTIO_NS = "common/istio/istio-namespace/base"
ISTIO_INSTALL = "common/istio/istio-install/overlays/oauth2-proxy"
JUPYTER = "applications/jupyter/jupyter-web-app/upstream/overlays/istio"
VOLUMES = "applications/volumes-web-app/upstream/overlays/istio"
WEB_APP_BASE = "applications/web-app-common/base"


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def config_map(name: str, ns: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}}


def claim(name: str, ns: str) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": ns},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}


def write_kustomization(root: Path, path: str, *refs: str, objects: tuple[dict, ...] = ()) -> None:
    """A kustomization at `path` over other tree paths (`refs`) and objects of its own."""
    directory = root / path
    directory.mkdir(parents=True, exist_ok=True)
    resources = [os.path.relpath(root / r, directory) for r in refs]
    if objects:
        (directory / "objects.yaml").write_text(yaml.safe_dump_all(objects))
        resources.append("objects.yaml")
    (directory / "kustomization.yaml").write_text(yaml.safe_dump({"resources": resources}))


def next_release(root: Path, unlisted: tuple[str, ...], listed: tuple[str, ...], gone: tuple[str, ...] = ()) -> Path:
    """v1.11.0's layout, where the example no longer lists `unlisted` (still in the tree) but lists
    `listed`, and `gone` is not in the tree."""
    paths = [p for p in v1_11_paths() if p not in gone]
    return fake_tree(root, [*paths, *listed], [p for p in [*paths, *listed] if p not in unlisted])


def overlay_and_base(root: Path) -> Path:
    """The example lists an overlay over cert-manager's base and issuer instead of the two."""
    tree = next_release(root, unlisted=(CM_BASE, CM_ISSUER), listed=(CM_OVERLAY,))
    write_kustomization(tree, CM_BASE, objects=(namespace("cert-manager"), config_map("cert-manager", "cert-manager")))
    write_kustomization(tree, CM_ISSUER, objects=(config_map("kubeflow-issuer", "cert-manager"),))
    write_kustomization(tree, CM_OVERLAY, CM_BASE, CM_ISSUER)
    return tree


def two_overlays_of_one_base(root: Path) -> Path:
    """The example lists a new overlay of oauth2-proxy's base; the one v1.11.0 used is still there."""
    tree = next_release(root, unlisted=(OAUTH2_OLD,), listed=(OAUTH2_NEW,))
    write_kustomization(tree, OAUTH2_BASE, objects=(namespace("oauth2-proxy"),))
    write_kustomization(tree, OAUTH2_OLD, OAUTH2_BASE)
    write_kustomization(tree, OAUTH2_NEW, OAUTH2_BASE, objects=(config_map("oauth2-proxy-routes", "oauth2-proxy"),))
    return tree


def moved_base_under_an_overlay(root: Path) -> Path:
    """cert-manager's base moved; the example lists an overlay over the moved base and the issuer."""
    moved = "common/cert-manager/upstream"
    tree = next_release(root, unlisted=(CM_ISSUER,), listed=(CM_OVERLAY,), gone=(CM_BASE,))
    write_kustomization(tree, moved, objects=(namespace("cert-manager"),))
    write_kustomization(tree, CM_ISSUER, objects=(config_map("kubeflow-issuer", "cert-manager"),))
    write_kustomization(tree, CM_OVERLAY, moved, CM_ISSUER)
    return tree


def install_includes_the_namespace(root: Path) -> Path:
    """Istio's install overlay includes its namespace, which the example no longer lists."""
    tree = next_release(root, unlisted=(ISTIO_NS,), listed=())
    write_kustomization(tree, ISTIO_NS, objects=(namespace("istio-system"),))
    write_kustomization(tree, ISTIO_INSTALL, ISTIO_NS, objects=(config_map("istio", "istio-system"),))
    return tree


SYNTHETIC = {
    "overlay and its base": (overlay_and_base, {"cert-manager": (CM_OVERLAY,)},
                             [("cert-manager", CM_BASE, CM_OVERLAY), ("cert-manager", CM_ISSUER, CM_OVERLAY)]),
    "two overlays of one base": (two_overlays_of_one_base, {"oauth2-proxy": (OAUTH2_NEW,)},
                                 [("oauth2-proxy", OAUTH2_OLD, OAUTH2_NEW)]),
    "a moved path": (moved_base_under_an_overlay, {"cert-manager": (CM_OVERLAY,)},
                     [("cert-manager", CM_ISSUER, CM_OVERLAY)]),
    "a path another component includes": (install_includes_the_namespace,
                                          {"istio": (ISTIO_CRDS, ISTIO_INSTALL), "istio-crds": (ISTIO_CRDS, ISTIO_NS)},
                                          [("istio", ISTIO_NS, ISTIO_INSTALL)]),
}


@pytest.mark.parametrize("case", SYNTHETIC, ids=list(SYNTHETIC))
def test_a_derived_map_resolves_overlaps_in_favour_of_the_example(tmp_path: Path, case: str):
    build, expected, replaced = SYNTHETIC[case]
    assert callable(build) and isinstance(expected, dict)
    derived = derive_component_map("v1.12.0", build(tmp_path))
    assert {name: derived.cmap.components[name] for name in expected} == expected
    assert derived.replaced == replaced
    assert derived.added == {}  # what the example lists took the place of what it no longer lists


def test_a_selection_leaves_out_a_path_another_selected_path_includes(tmp_path: Path):
    tree = install_includes_the_namespace(tmp_path)
    cmap = derive_component_map("v1.12.0", tree).cmap
    full = selected_paths(tree, cmap, list(cmap.components), "sim")
    assert ISTIO_INSTALL in full and ISTIO_NS not in full  # istio-crds' namespace comes with istio
    assert selected_paths(tree, cmap, ["istio-crds"], "sim") == [ISTIO_CRDS, ISTIO_NS]


@pytest.mark.render
@pytest.mark.parametrize("case", SYNTHETIC, ids=list(SYNTHETIC))
def test_kustomize_accepts_the_derived_map_of_a_synthetic_tree(tmp_path: Path, case: str):
    require_toolchain("kustomize")
    tree = SYNTHETIC[case][0](tmp_path)
    cmap = derive_component_map("v1.12.0", tree).cmap
    paths = selected_paths(tree, cmap, list(cmap.components), "sim")
    built = [object_key(o) for o in kustomize_build(tree, paths, cmap.kustomize_components)]
    written = sorted(object_key(o) for f in tree.rglob("objects.yaml") for o in yaml.safe_load_all(f.read_text()))
    assert sorted(built) == written  # each object once, none missing


def test_two_selected_paths_that_share_a_base_fail_before_kustomize_naming_both(tmp_path: Path):
    # Neither web app's overlay is in the example any more (nothing decides between them), and
    # both now build one shared base.
    tree = next_release(tmp_path, unlisted=(JUPYTER, VOLUMES), listed=())
    write_kustomization(tree, WEB_APP_BASE, objects=(config_map("web-app-common", "kubeflow"),))
    write_kustomization(tree, JUPYTER, WEB_APP_BASE)
    write_kustomization(tree, VOLUMES, WEB_APP_BASE)
    derived = derive_component_map("v1.12.0", tree)
    assert derived.replaced == []
    with pytest.raises(ConfigError) as info:
        selected_paths(tree, derived.cmap, list(derived.cmap.components), "sim")
    [problem] = info.value.problems
    assert (problem.key, problem.value) == ("kubeflow.manifests", str(tree))
    assert problem.fix == (
        f"{JUPYTER} (component jupyter-web-app) and {VOLUMES} (component volumes-web-app) both build "
        f"{WEB_APP_BASE}, and neither includes the other, so kustomize would add those objects twice; exclude "
        f"one of the components (kubeflow.exclude), or add infra/manifests/releases/v1.12.0.toml choosing one")
    selected_paths(tree, derived.cmap, [n for n in derived.cmap.components if n != "volumes-web-app"], "sim")


def test_a_derived_map_lists_each_components_claims_and_checks_the_config_against_them(tmp_path: Path):
    tree = next_release(tmp_path, unlisted=(), listed=())
    write_kustomization(tree, PIPELINES_OLD, "applications/pipeline/upstream/third-party/mysql")
    write_kustomization(tree, "applications/pipeline/upstream/third-party/mysql",
                        objects=(claim("mysql-pv-claim", "kubeflow"),))
    assert derive_component_map("v1.12.0", tree).cmap.claims == {"pipelines": ("mysql-pv-claim",)}
    raw = base_raw(kubeflow={"release": "v1.12.0"}, storage={"claims": {"katib-mysql": {}, "mysql-pv-claim": {}}})
    cfg = parse_stack_config("t", raw, {"auth"})  # no map of v1.12.0 to check against yet
    with pytest.raises(ConfigError) as info:
        component_map_for(cfg, tree)
    assert [str(p) for p in info.value.problems] == [
        "kubeflow-stacks:storage.claims.katib-mysql = 'katib-mysql': no such claim in v1.12.0; claims of the "
        "selected components: mysql-pv-claim"]


@pytest.mark.parametrize("release", ["v1.11.0", "v1.10.2"])
def test_hand_written_claims_are_the_trees(release: str, previous_tree: Path, manifests_tree: Path):
    tree = {"v1.11.0": manifests_tree, "v1.10.2": previous_tree}[release]
    assert derive_component_map(release, tree, base_release=release).cmap.claims == load_component_map(release).claims


@pytest.mark.render
def test_v1_10_2_treated_as_unknown_renders_what_its_hand_written_map_renders(
        previous_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    require_toolchain("kustomize")
    cfg = parse_stack_config("t", base_raw(kubeflow={"release": "v1.10.2"}), {"auth"})
    written = render(cfg, previous_tree)
    only_v1_11 = tmp_path / "releases"
    only_v1_11.mkdir()
    shutil.copy(components.RELEASES_DIR / "v1.11.0.toml", only_v1_11)
    monkeypatch.setattr(components, "RELEASES_DIR", only_v1_11)
    assert not components.has_hand_written_map("v1.10.2")
    derived = render(parse_stack_config("t", base_raw(kubeflow={"release": "v1.10.2"}), {"auth"}), previous_tree)
    assert sorted(derived.components) == sorted(written.components)  # an added component comes last
    as_set = lambda objects: {json.dumps(o, sort_keys=True) for o in objects}  # noqa: E731
    assert as_set(derived.objects) == as_set(written.objects)
