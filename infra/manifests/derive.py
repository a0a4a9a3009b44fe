"""A release's component map, checked against (or derived from) the manifests tree itself.

Upstream's `example/kustomization.yaml` lists every component's kustomize path. For a release with
a hand-written map (infra/manifests/releases/), every path the stack selects must exist in the
tree; for a release without one, the map of the nearest known release is carried over path by
path: a path that still exists is kept, a path that moved is replaced by the one entry of the
example in the same place (`applications/<name>/...` or `common/<name>/...`), a component the
release no longer ships is left out, and an example entry nothing claims becomes a component of
its own. What cannot be decided fails here, before kustomize runs, with one message per path that
names it, what the example lists instead, and what to do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from infra.config import ConfigError, KubeflowConfig, Problem
from infra.manifests.components import RELEASES_DIR, ComponentMap, load_component_map, nearest_release

EXAMPLE = Path("example") / "kustomization.yaml"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@dataclass(frozen=True)
class Example:
    """What a tree's example kustomization lists, as paths relative to the tree's root."""

    resources: tuple[str, ...]
    components: tuple[str, ...]


@dataclass
class Derivation:
    """A derived map and how each decision was made (shown by `kfstack render` and tests)."""

    cmap: ComponentMap
    moved: dict[str, tuple[str, str]] = field(default_factory=dict)  # component -> (old path, new path)
    dropped: list[str] = field(default_factory=list)
    added: dict[str, str] = field(default_factory=dict)  # component -> path


def read_example(tree: Path) -> Example | None:
    """The tree's example kustomization, or None when the tree has none (a trimmed tree)."""
    path = tree / EXAMPLE
    if not path.is_file():
        return None
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}

    def rel(entries: Any) -> tuple[str, ...]:
        return tuple(os.path.normpath(os.path.join("example", str(e))) for e in entries or ())

    return Example(rel(data.get("resources")), rel(data.get("components")))


def kustomize_dir_exists(tree: Path, path: str) -> bool:
    return any((tree / path / name).is_file() for name in KUSTOMIZATION_FILES)


def _area(path: str) -> tuple[str, ...]:
    """Where a path lives: applications/<name> or common/<name> (istio's parts by their third part)."""
    parts = path.split("/")
    return tuple(parts[:3]) if parts[:2] == ["common", "istio"] else tuple(parts[:2])


def _candidates(path: str, entries: tuple[str, ...]) -> list[str]:
    return [e for e in entries if _area(e) == _area(path)]


def _layout_problem(tree: Path, component: str, path: str, example: Example | None, release: str,
                    hand_written: bool) -> Problem:
    listed = _candidates(path, example.resources + example.components) if example else []
    where = (f"{EXAMPLE} lists {', '.join(listed)} there" if listed else
             f"{EXAMPLE} lists nothing under {'/'.join(_area(path))}" if example else f"the tree has no {EXAMPLE}")
    fix = (f"point kubeflow.manifests at a {release} tree, or update infra/manifests/releases/{release}.toml"
           if hand_written else f"add infra/manifests/releases/{release}.toml mapping {component} to its new path, "
                                f"or exclude it (kubeflow.exclude)")
    return Problem("kubeflow.manifests", str(tree),
                   f"component {component}: {path} is not in this tree (moved or removed); {where}; {fix}")


def check_paths(tree: Path, cmap: ComponentMap, selected: list[str], provider: str) -> None:
    """Every path the stack selects exists in the tree; otherwise one problem per missing path."""
    example = read_example(tree)
    problems = [_layout_problem(tree, name, p, example, cmap.release, True)
                for name in selected for p in cmap.paths_for(name, provider) if not kustomize_dir_exists(tree, p)]
    problems += [_layout_problem(tree, "(kustomize component)", c, example, cmap.release, True)
                 for c in cmap.kustomize_components if not kustomize_dir_exists(tree, c)]
    if problems:
        raise ConfigError(problems)


def _component_name(path: str, taken: set[str]) -> str:
    parts = path.split("/")
    for size in range(1, len(parts)):
        name = "-".join(parts[1:1 + size])
        if name not in taken:
            return name
    return path.replace("/", "-")


def derive_component_map(release: str, tree: Path, base_release: str | None = None) -> Derivation:
    """A map for a release that has none, from the nearest known map (or `base_release`'s) and the
    tree's example."""
    base = load_component_map(base_release or nearest_release(release))
    example = read_example(tree)
    if example is None:
        raise ConfigError([Problem("kubeflow.manifests", str(tree),
                                   f"no component map for Kubeflow {release} and no {EXAMPLE} in the tree to "
                                   f"derive one from; add infra/manifests/releases/{release}.toml")])
    claimed = {p for p in example.resources if any(p in paths for paths in base.components.values())}
    result = Derivation(base)
    components: dict[str, tuple[str, ...]] = {}
    problems: list[Problem] = []
    for name, paths in base.components.items():
        new_paths: list[str] = []
        failed = False
        for path in paths:
            if kustomize_dir_exists(tree, path):
                new_paths.append(path)
                continue
            free = [c for c in _candidates(path, example.resources) if c not in claimed]
            if len(free) == 1:
                new_paths.append(free[0])
                claimed.add(free[0])
                result.moved[name] = (path, free[0])
            elif free or name in base.core:
                problems.append(_layout_problem(tree, name, path, example, release, False))
                failed = True
        if len(new_paths) == len(paths):
            components[name] = tuple(new_paths)
        elif not failed:
            result.dropped.append(name)  # this release does not ship it
    if problems:
        raise ConfigError(problems)
    for path in example.resources:
        if path not in claimed and not any(path in v for v in components.values()):
            name = _component_name(path, set(components))
            components[name] = (path,)
            result.added[name] = path
    kustomize_components = tuple(c for c in base.kustomize_components if kustomize_dir_exists(tree, c))
    kustomize_components += tuple(c for c in example.components if c not in kustomize_components)
    variants = {c: {p: v for p, v in pv.items() if all(kustomize_dir_exists(tree, x) for x in v)}
                for c, pv in base.variants.items() if c in components}
    result.cmap = replace(base, release=release, components=components,
                          core=tuple(c for c in base.core if c in components),
                          kustomize_components=kustomize_components, variants=variants)
    return result


def has_hand_written_map(release: str) -> bool:
    return (RELEASES_DIR / f"{release}.toml").is_file()


def component_map_for(kubeflow: KubeflowConfig, tree: Path) -> ComponentMap:
    """The map render uses: the hand-written one, or one derived from the tree (include/exclude
    names checked against it)."""
    if has_hand_written_map(kubeflow.release):
        return load_component_map(kubeflow.release)
    cmap = derive_component_map(kubeflow.release, tree).cmap
    unknown = [(key, i, n) for key in ("include", "exclude") for i, n in enumerate(getattr(kubeflow, key))
               if n not in cmap.components]
    if unknown:
        has = ", ".join(cmap.components)
        raise ConfigError([Problem(f"kubeflow.{key}[{i}]", n, f"not a component of {kubeflow.release} (derived "
                                   f"from {tree / EXAMPLE}); it has: {has}") for key, i, n in unknown])
    return cmap
