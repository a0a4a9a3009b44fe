"""A release's component map, checked against (or derived from) the manifests tree itself.

Upstream's `example/kustomization.yaml` lists every component's kustomize path. For a release with
a hand-written map (infra/manifests/releases/), every path the stack selects must exist in the
tree; for a release without one, the map of the nearest known release is carried over path by
path: a path that still exists is kept, a path that moved is replaced by the one entry of the
example in the same place (`applications/<name>/...` or `common/<name>/...`), a component the
release no longer ships is left out, and an example entry nothing claims becomes a component of
its own. What cannot be decided fails here, before kustomize runs, with one message per path that
names it, what the example lists instead, and what to do.

kustomize refuses two selected paths that build the same objects, so a derived map never keeps, in
one component, a path that another of its paths includes, and where a path the example does not
list overlaps one it lists (an overlay's base, or a sibling overlay of one base), the listed one
takes its place. At render, a path that another selected path includes is left to that path, and
two selected paths that still overlap fail here, both named, before kustomize runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from itertools import combinations
from pathlib import Path
from typing import Any

import yaml

from infra.config import ConfigError, Problem, StackConfig, reference_problems
from infra.manifests.components import ComponentMap, has_hand_written_map, load_component_map, nearest_release
from infra.manifests.references import References, kustomize_dir_exists

EXAMPLE = Path("example") / "kustomization.yaml"


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
    # (component, path, the path the example lists that builds it or overlaps it, in its place)
    replaced: list[tuple[str, str, str]] = field(default_factory=list)


def read_example(tree: Path) -> Example | None:
    """The tree's example kustomization, or None when the tree has none (a trimmed tree)."""
    path = tree / EXAMPLE
    if not path.is_file():
        return None
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}

    def rel(entries: Any) -> tuple[str, ...]:
        return tuple(os.path.normpath(os.path.join("example", str(e))) for e in entries or ())

    return Example(rel(data.get("resources")), rel(data.get("components")))


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
    refs = References(tree)
    result.replaced = _resolve_overlaps(components, set(result.added), example.resources, refs)
    result.added = {name: path for name, path in result.added.items() if name in components}
    kustomize_components = tuple(c for c in base.kustomize_components if kustomize_dir_exists(tree, c))
    kustomize_components += tuple(c for c in example.components if c not in kustomize_components)
    variants = {c: {p: v for p, v in pv.items() if all(kustomize_dir_exists(tree, x) for x in v)}
                for c, pv in base.variants.items() if c in components}
    claims = {name: found for name, paths in components.items()
              if (found := tuple(sorted({c for p in paths for c in refs.claims(p)})))}
    result.cmap = replace(base, release=release, components=components,
                          core=tuple(c for c in base.core if c in components),
                          kustomize_components=kustomize_components, variants=variants, claims=claims,
                          derived_from=str(tree / EXAMPLE))
    return result


def _resolve_overlaps(components: dict[str, tuple[str, ...]], added: set[str], listed: tuple[str, ...],
                      refs: References) -> list[tuple[str, str, str]]:
    """Edits a derived map (in place) so that its paths build each object once; returns
    (component, path, replacement) for each path replaced. Overlaps this cannot decide are left
    for `selected_paths`, which names them when a stack selects both."""
    replaced: list[tuple[str, str, str]] = []
    # In one component, a path that another of its paths builds is redundant.
    for name, paths in components.items():
        for path in paths:
            outer = next((q for q in paths if refs.includes(q, path) and not refs.includes(path, q)), None)
            if outer:
                replaced.append((name, path, outer))
        components[name] = tuple(p for p in paths if p not in {old for n, old, _ in replaced if n == name})
    # A path the example does not list gives way to the one entry it lists that overlaps it: a sibling
    # overlay of the same base, or, when no other component has that entry, one that includes it.
    added_paths = {components[name][0] for name in added}
    kept = {p for name, paths in components.items() if name not in added for p in paths}
    for path in sorted(kept - set(listed)):
        takers = [q for q in listed if q != path and not refs.includes(path, q)
                  and ((refs.includes(q, path) and q in added_paths) or
                       (not refs.includes(q, path) and refs.shared(path, q)))]
        if len(takers) != 1:
            continue
        for name, paths in components.items():
            if name not in added and path in paths:
                components[name] = tuple(dict.fromkeys(takers[0] if p == path else p for p in paths))
                replaced.append((name, path, takers[0]))
    # An example entry added as a component of its own that now belongs to another one is not.
    for name in added:
        if any(components[name][0] in paths for other, paths in components.items() if other not in added):
            del components[name]
    return replaced


def selected_paths(tree: Path, cmap: ComponentMap, selected: list[str], provider: str) -> list[str]:
    """The paths kustomize builds for a selection: every one in the tree, each once, and none that
    another selected path already builds. Two that would build the same objects otherwise fail here,
    named, before kustomize refuses them."""
    check_paths(tree, cmap, selected, provider)
    owners: dict[str, list[str]] = {}
    for name in selected:
        for path in cmap.paths_for(name, provider):
            owners.setdefault(path, []).append(name)
    refs = References(tree)
    paths = [p for p in owners if not any(refs.includes(q, p) for q in owners)]
    problems = []
    for a, b in combinations(paths, 2):
        if shared := refs.shared(a, b):
            fix = (f"add infra/manifests/releases/{cmap.release}.toml choosing one" if cmap.derived_from
                   else f"fix {cmap.source}")
            problems.append(Problem("kubeflow.manifests", str(tree), (
                f"{a} (component {', '.join(owners[a])}) and {b} (component {', '.join(owners[b])}) both build "
                f"{shared[0]}{f' and {len(shared) - 1} more' if len(shared) > 1 else ''}, and neither includes the "
                f"other, so kustomize would add those objects twice; exclude one of the components "
                f"(kubeflow.exclude), or {fix}")))
    if problems:
        raise ConfigError(problems)
    return paths


def component_map_for(cfg: StackConfig, tree: Path) -> ComponentMap:
    """The map render uses: the hand-written one (the config's references were checked against it
    when the config was parsed), or one derived from the tree, the references checked against it
    here."""
    if has_hand_written_map(cfg.kubeflow.release):
        return load_component_map(cfg.kubeflow.release)
    cmap = derive_component_map(cfg.kubeflow.release, tree).cmap
    if problems := reference_problems(cmap, cfg.kubeflow, cfg.storage, cfg.gateway):
        raise ConfigError(problems)
    return cmap
