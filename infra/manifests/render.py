"""Render: a pure function from validated config and a manifests tree to the objects to apply.

kustomize builds upstream's own overlays for the selected components; our patches then apply
the stack's storage, auth, profiles and (on sim) simulator adjustments. The Pulumi program,
`kfstack render` and every offline test call this one function.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from infra.config import StackConfig
from infra.errors import UserError
from infra.manifests.components import select_components
from infra.manifests.derive import component_map_for, selected_paths
from infra.manifests.objects import Obj, Rendered
from infra.patches import apply_patches
from infra.paths import cache_root
from smoke_tests.run import CommandError, run

KUSTOMIZE_TIMEOUT_S = 600
# Upstream's example orders kinds this way; we keep it so a `full` render matches it object for
# object. Apply order is decided separately, in infra/apply.py.
LEGACY_ORDER_FIRST = [
    "Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition",
    "MutatingWebhookConfiguration", "ServiceAccount", "PodSecurityPolicy", "NetworkPolicy", "Role",
    "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ConfigMap", "Secret", "Endpoints", "Service",
    "LimitRange", "PriorityClass", "PersistentVolume", "PersistentVolumeClaim", "Deployment",
    "StatefulSet", "CronJob", "PodDisruptionBudget",
]
LEGACY_ORDER_LAST = ["ValidatingWebhookConfiguration"]


def legacy_rank(kind: str) -> int:
    """Where kustomize's legacy sort puts a kind: the first list, then every other kind, then the last."""
    if kind in LEGACY_ORDER_FIRST:
        return LEGACY_ORDER_FIRST.index(kind)
    if kind in LEGACY_ORDER_LAST:
        return len(LEGACY_ORDER_FIRST) + 1 + LEGACY_ORDER_LAST.index(kind)
    return len(LEGACY_ORDER_FIRST)


def into_legacy_order(objects: list[Obj]) -> None:
    """Put the patches' added objects where kustomize would have, keeping kustomize's order otherwise.

    The patches append objects after kustomize's sort: a storage class, one volume per claim, the
    provisioners. Applied in that order (`kfstack render | kubectl apply -f -`, or upstream's loop
    in `kfstack bench deploy`), a claim goes in before its class and volume, its provisioning fails
    and it stays Pending until the volume controller's next resync, up to 15 s later.
    """
    objects.sort(key=lambda obj: legacy_rank(obj["kind"]))


class RenderError(UserError):
    """kustomize refused the selected paths of a manifests tree."""


# libyaml's safe loader reads the same documents as PyYAML's pure-Python one, five times faster: a
# cold render of the full release spent 10 of its 16 s parsing kustomize's 10 MB of output.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def kustomization(tree: Path, workdir: Path, paths: Sequence[str], components: Sequence[str]) -> Obj:
    """A kustomization in `workdir` over upstream paths (kustomize wants them relative)."""
    rel = lambda p: os.path.relpath(tree / p, workdir)  # noqa: E731
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "sortOptions": {"order": "legacy", "legacySortOptions": {
            "orderFirst": LEGACY_ORDER_FIRST, "orderLast": LEGACY_ORDER_LAST}},
        "resources": [rel(p) for p in paths],
        "components": [rel(c) for c in components],
    }


def kustomize_build(tree: Path, paths: Sequence[str], components: Sequence[str], *,
                    cache: bool = True) -> list[Obj]:
    """Run the pinned kustomize over the selected paths; cached by inputs, since it takes seconds
    (`cache=False`: neither read nor written, kustomize runs)."""
    from infra.toolchain import tool_path

    kustomize = tool_path("kustomize")
    if not cache:
        return _build(kustomize, tree, paths, components)
    key = _cache_key(tree, paths, components, kustomize)
    cached = cache_root() / "render" / f"{key}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    objects = _build(kustomize, tree, paths, components)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp_file = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp_file.write_text(json.dumps(objects))
    tmp_file.replace(cached)
    return objects


def _build(kustomize: Path, tree: Path, paths: Sequence[str], components: Sequence[str]) -> list[Obj]:
    """`kustomize build` of a kustomization over the selected paths, in a directory of its own."""
    with tempfile.TemporaryDirectory(prefix="kfstack-kustomize-") as tmp:
        workdir = Path(tmp)
        (workdir / "kustomization.yaml").write_text(
            yaml.safe_dump(kustomization(tree, workdir, paths, components), sort_keys=False))
        try:
            out = run([kustomize, "build", str(workdir)], timeout=KUSTOMIZE_TIMEOUT_S).stdout
        except CommandError as exc:
            raise RenderError(f"kustomize could not build the selected components of {tree}: "
                              f"{exc.stderr.strip()[-2000:] or exc}") from exc
    return [d for d in yaml.load_all(out, Loader=YAML_LOADER) if d]


def _cache_key(tree: Path, paths: Sequence[str], components: Sequence[str], kustomize: Path) -> str:
    """Inputs that decide kustomize's output: the tree's files (names, sizes, mtimes), the
    selection and the kustomize binary."""
    h = hashlib.sha256()
    h.update(json.dumps([str(tree), list(paths), list(components)]).encode())
    st = kustomize.stat()
    h.update(f"{kustomize}:{st.st_size}:{st.st_mtime_ns}".encode())
    for root, dirs, files in os.walk(tree):
        dirs.sort()
        for name in sorted(files):
            s = os.stat(os.path.join(root, name))
            h.update(f"{root}/{name}:{s.st_size}:{s.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def render(cfg: StackConfig, tree: Path, *, cache: bool = True) -> Rendered:
    """Every object the stack applies, patched for its storage, auth, profiles and provider
    (`cache=False`: kustomize runs, its render cache is neither read nor written)."""
    cmap = component_map_for(cfg, tree)
    selected = select_components(cmap, cfg.kubeflow)
    # A moved path, or two paths that would build the same objects, fail here, named.
    paths = selected_paths(tree, cmap, selected, cfg.cluster.provider)
    # kustomize_build gives new objects on every call (parsed from the cache file or from kustomize's
    # output), so the patches may change them in place: no copy (a deep copy cost 0.4 s per run).
    objects = kustomize_build(tree, paths, cmap.kustomize_components, cache=cache)
    rendered = Rendered(objects=objects, release=cfg.kubeflow.release, components=selected, tree=tree,
                        left_out=cmap.left_out(cfg.kubeflow))
    apply_patches(rendered, cfg)
    into_legacy_order(rendered.objects)
    return rendered
