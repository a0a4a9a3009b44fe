"""The per-release component map: component names to upstream kustomize paths."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from infra.config import KubeflowConfig
from infra.errors import UserError

RELEASES_DIR = Path(__file__).with_name("releases")


@dataclass(frozen=True)
class ComponentMap:
    release: str
    components: dict[str, tuple[str, ...]]
    core: tuple[str, ...]
    kustomize_components: tuple[str, ...]
    variants: dict[str, dict[str, tuple[str, ...]]]
    # component -> components it needs; "" stands for the kustomize components (Pod Security).
    requires: dict[str, tuple[str, ...]] = field(default_factory=dict)

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


class UnknownComponentError(UserError, ValueError):
    pass


def _version_key(release: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", release)[:3])


def nearest_release(release: str) -> str:
    """The hand-written map closest to `release`: the newest not newer than it, else the oldest."""
    known = sorted((p.stem for p in RELEASES_DIR.glob("*.toml")), key=_version_key)
    older = [k for k in known if _version_key(k) <= _version_key(release)]
    return older[-1] if older else known[0]


def load_component_map(release: str) -> ComponentMap:
    """The release's hand-written map; for a release without one, the nearest release's map under
    its name (render derives the real one from the tree: infra/manifests/derive.py)."""
    path = RELEASES_DIR / f"{release}.toml"
    if not path.exists():
        return replace(load_component_map(nearest_release(release)), release=release)
    data = tomllib.loads(path.read_text())
    return ComponentMap(
        release=release,
        components={k: tuple(v) for k, v in data["components"].items()},
        core=tuple(data["core"]),
        kustomize_components=tuple(data.get("kustomize_components", ())),
        variants={c: {p: tuple(v) for p, v in pv.items()} for c, pv in data.get("variants", {}).items()},
        requires={**{c: tuple(v) for c, v in data.get("requires", {}).items()},
                  "": tuple(data.get("kustomize_components_require", ()))},
    )


def select_components(cmap: ComponentMap, kubeflow: KubeflowConfig) -> list[str]:
    """The component names a stack deploys, in map order: the set, plus include, minus exclude."""
    unknown = [n for n in (*kubeflow.include, *kubeflow.exclude) if n not in cmap.components]
    if unknown:
        raise UnknownComponentError(
            f"unknown Kubeflow component(s) {', '.join(unknown)} in kubeflow.include/exclude; "
            f"{cmap.release} has: {', '.join(cmap.components)}")
    base = set(cmap.components) if kubeflow.components == "full" else set(cmap.core)
    chosen = (base | set(kubeflow.include)) - set(kubeflow.exclude)
    return [name for name in cmap.components if name in chosen]


def requirement_problems(cmap: ComponentMap, kubeflow: KubeflowConfig) -> list[tuple[str, Any, str]]:
    """(config key, value, fix) for each component the selection needs but leaves out."""
    selected = select_components(cmap, kubeflow)
    problems: list[tuple[str, Any, str]] = []
    for needer, missing in sorted(cmap.missing_requirements(selected).items()):
        who = needer or f"the Pod Security labels ({', '.join(cmap.kustomize_components)})"
        for name in missing:
            value: Any
            if name in kubeflow.exclude:
                key, value = f"kubeflow.exclude[{kubeflow.exclude.index(name)}]", name
                fix = (f"{who} needs {name}; keep it, or exclude {needer} too" if needer
                       else f"{who} always apply and need {name}; keep it")
            else:
                key, value = "kubeflow.include", list(kubeflow.include)
                fix = f"{who} needs {name}; add it to kubeflow.include"
            problems.append((key, value, fix))
    return problems
