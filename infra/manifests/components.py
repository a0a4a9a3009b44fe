"""The per-release component map: component names to upstream kustomize paths, and the names of
the upstream objects a stack's config may refer to (each component's PersistentVolumeClaims).

A leaf module: it imports nothing of the project but its errors, so that the config model checks
every reference against the release's map when the config is parsed (infra/config.py), and
derivation and render build on the same map without an import cycle.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from infra.errors import UserError

RELEASES_DIR = Path(__file__).with_name("releases")


class Selection(Protocol):
    """What a stack selects (the config's `kubeflow` section has these)."""

    @property
    def components(self) -> str: ...
    @property
    def include(self) -> tuple[str, ...]: ...
    @property
    def exclude(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class ComponentMap:
    release: str
    components: dict[str, tuple[str, ...]]
    core: tuple[str, ...]
    kustomize_components: tuple[str, ...]
    variants: dict[str, dict[str, tuple[str, ...]]]
    # component -> components it needs; "" stands for the kustomize components (Pod Security).
    requires: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # component -> the PersistentVolumeClaims it brings (what `storage.claims` may name).
    claims: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # component -> part -> the objects (Kind/name) of a part a stack may leave out (`component/part`).
    parts: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    # Where a map without a file of its own came from (infra/manifests/derive.py); None: hand-written.
    derived_from: str | None = None

    @property
    def source(self) -> str:
        return (f"derived from {self.derived_from}" if self.derived_from
                else f"infra/manifests/releases/{self.release}.toml")

    def missing_requirements(self, selected: Collection[str]) -> dict[str, list[str]]:
        """For each selected component (or "" for the kustomize components) what it needs that
        the selection leaves out."""
        needs = {name: self.requires.get(name, ()) for name in selected}
        if self.kustomize_components:
            needs[""] = self.requires.get("", ())
        return {name: missing for name, wants in needs.items()
                if (missing := [w for w in wants if w not in selected])}

    def paths_for(self, name: str, provider: str) -> tuple[str, ...]:
        """A component's paths, with the platform variant upstream documents for `provider`."""
        return self.variants.get(name, {}).get(provider, self.components[name])

    def part_names(self) -> list[str]:
        """Every part's name as `kubeflow.exclude` spells it: component/part."""
        return [f"{c}/{p}" for c, parts in self.parts.items() for p in parts]

    def left_out(self, selection: Selection) -> dict[str, tuple[str, ...]]:
        """component/part -> its objects (Kind/name), for each excluded part of a selected component."""
        selected = set(select_components(self, selection))
        return {name: self.parts[c][p] for name in selection.exclude if "/" in name
                for c, p in [name.split("/", 1)] if c in selected and p in self.parts.get(c, {})}

    def claim_owners(self) -> dict[str, str]:
        """claim name -> the component that brings it."""
        return {claim: name for name, claims in self.claims.items() for claim in claims}


class UnknownComponentError(UserError, ValueError):
    pass


def _version_key(release: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", release)[:3])


def has_hand_written_map(release: str) -> bool:
    return (RELEASES_DIR / f"{release}.toml").is_file()


def nearest_release(release: str) -> str:
    """The hand-written map closest to `release`: the newest not newer than it, else the oldest."""
    known = sorted((p.stem for p in RELEASES_DIR.glob("*.toml")), key=_version_key)
    older = [k for k in known if _version_key(k) <= _version_key(release)]
    return older[-1] if older else known[0]


def load_component_map(release: str) -> ComponentMap:
    """A release's hand-written map (a release without one has its map derived from the tree:
    infra/manifests/derive.py)."""
    data = tomllib.loads((RELEASES_DIR / f"{release}.toml").read_text())
    return ComponentMap(
        release=release,
        components={k: tuple(v) for k, v in data["components"].items()},
        core=tuple(data["core"]),
        kustomize_components=tuple(data.get("kustomize_components", ())),
        variants={c: {p: tuple(v) for p, v in pv.items()} for c, pv in data.get("variants", {}).items()},
        requires={**{c: tuple(v) for c, v in data.get("requires", {}).items()},
                  "": tuple(data.get("kustomize_components_require", ()))},
        claims={c: tuple(v) for c, v in data.get("claims", {}).items()},
        parts={c: {p: tuple(v) for p, v in pv.items()} for c, pv in data.get("parts", {}).items()},
    )


def unknown_components(cmap: ComponentMap, selection: Selection) -> list[tuple[str, int, str]]:
    """(kubeflow.include or kubeflow.exclude, index, name) for each name the map does not have (a
    component's part, `component/part`, may only be excluded)."""
    parts = set(cmap.part_names())
    return [(key, i, n) for key in ("include", "exclude") for i, n in enumerate(getattr(selection, key))
            if n not in cmap.components and not (key == "exclude" and n in parts)]


def _parts_listing(cmap: ComponentMap) -> str:
    names = cmap.part_names()
    return f"; parts it may leave out (kubeflow.exclude only): {', '.join(names)}" if names else ""


def select_components(cmap: ComponentMap, selection: Selection) -> list[str]:
    """The component names a stack deploys, in map order: the set, plus include, minus exclude."""
    if unknown := unknown_components(cmap, selection):
        raise UnknownComponentError(
            f"unknown Kubeflow component(s) {', '.join(n for _, _, n in unknown)} in kubeflow.include/exclude; "
            f"{cmap.release} has: {', '.join(cmap.components)}{_parts_listing(cmap)}")
    base = set(cmap.components) if selection.components == "full" else set(cmap.core)
    chosen = (base | set(selection.include)) - set(selection.exclude)
    return [name for name in cmap.components if name in chosen]


def requirement_problems(cmap: ComponentMap, selection: Selection) -> list[tuple[str, Any, str]]:
    """(config key, value, fix) for each component the selection needs but leaves out."""
    selected = select_components(cmap, selection)
    problems: list[tuple[str, Any, str]] = []
    for needer, missing in sorted(cmap.missing_requirements(selected).items()):
        who = needer or f"the Pod Security labels ({', '.join(cmap.kustomize_components)})"
        for name in missing:
            value: Any
            if name in selection.exclude:
                key, value = f"kubeflow.exclude[{selection.exclude.index(name)}]", name
                fix = (f"{who} needs {name}; keep it, or exclude {needer} too" if needer
                       else f"{who} always apply and need {name}; keep it")
            else:
                key, value = "kubeflow.include", list(selection.include)
                fix = f"{who} needs {name}; add it to kubeflow.include"
            problems.append((key, value, fix))
    return problems
