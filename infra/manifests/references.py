"""What a manifests tree's kustomizations reference, read from the files without running kustomize.

kustomize refuses to add an object twice ("may not add resource with an already registered id"),
so two selected paths must not build the same files: one that another includes (an overlay and its
own base), or two that share a base (two overlays of one base). Derivation and render read the
reference graph (`resources`, `components` and the older `bases`, followed transitively) to find
such pairs before kustomize runs, and to list the PersistentVolumeClaims a path brings, which
stack config may name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
REFERENCE_FIELDS = ("resources", "components", "bases")
# A kustomization that makes objects of its own (not only from the files it lists).
GENERATOR_FIELDS = ("configMapGenerator", "secretGenerator", "generators", "helmCharts")
CLAIM_KIND = "PersistentVolumeClaim"
# A document of that kind, not a schema that mentions it (CRDs do, and they are megabytes to parse).
_CLAIM_DOCUMENT = re.compile(rf"^kind:[ \t]*['\"]?{CLAIM_KIND}['\"]?[ \t]*$", re.MULTILINE)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def kustomization_file(tree: Path, path: str) -> Path | None:
    return next((tree / path / n for n in KUSTOMIZATION_FILES if (tree / path / n).is_file()), None)


def kustomize_dir_exists(tree: Path, path: str) -> bool:
    return kustomization_file(tree, path) is not None


def _is_remote(ref: str) -> bool:
    return "://" in ref or ref.startswith(("github.com/", "git@"))


@dataclass(frozen=True)
class Reach:
    """Everything kustomize reads when it builds one path (paths relative to the tree)."""

    dirs: frozenset[str]  # the kustomizations it builds, its own included
    sources: frozenset[str]  # where its objects come from: resource files and generating kustomizations


class References:
    """The reference graph of one tree, each kustomization read once."""

    def __init__(self, tree: Path) -> None:
        self.tree = tree
        self._read: dict[str, dict[str, Any]] = {}
        self._reach: dict[str, Reach] = {}

    def kustomization(self, path: str) -> dict[str, Any]:
        if path not in self._read:
            found = kustomization_file(self.tree, path)
            data = yaml.load(found.read_text(encoding="utf-8"), Loader=_LOADER) if found else None
            self._read[path] = data if isinstance(data, dict) else {}
        return self._read[path]

    def refs(self, path: str) -> Iterator[str]:
        """The local paths a kustomization lists, relative to the tree."""
        data = self.kustomization(path)
        for name in REFERENCE_FIELDS:
            for ref in data.get(name) or ():
                if isinstance(ref, str) and not _is_remote(ref):
                    yield os.path.normpath(os.path.join(path, ref))

    def reach(self, path: str) -> Reach:
        """What building `path` reads (a reference to nothing is kustomize's to report)."""
        if path not in self._reach:
            dirs: set[str] = set()
            sources: set[str] = set()
            todo = [path]
            while todo:
                current = todo.pop()
                if current in dirs or current in sources:
                    continue
                if not (self.tree / current).is_dir():
                    if (self.tree / current).is_file():
                        sources.add(current)
                    continue
                dirs.add(current)
                if any(self.kustomization(current).get(g) for g in GENERATOR_FIELDS):
                    sources.add(current)
                todo.extend(self.refs(current))
            self._reach[path] = Reach(frozenset(dirs), frozenset(sources))
        return self._reach[path]

    def includes(self, outer: str, inner: str) -> bool:
        """Whether building `outer` builds `inner` too."""
        return outer != inner and inner in self.reach(outer).dirs

    def shared(self, a: str, b: str) -> list[str]:
        """What both paths build objects from, empty when nothing: the outermost kustomizations both
        include (a common base), then any file both list outside those."""
        sources = self.reach(a).sources & self.reach(b).sources
        if not sources:
            return []
        bases = [d for d in self.reach(a).dirs & self.reach(b).dirs if self.reach(d).sources & sources]
        tops = sorted(d for d in bases if not any(self.includes(o, d) for o in bases))
        covered = {s for d in tops for s in self.reach(d).sources}
        return tops + sorted(sources - covered)

    def claims(self, path: str) -> tuple[str, ...]:
        """The PersistentVolumeClaims building `path` makes, with the name prefixes and suffixes of
        the kustomizations on the way (patches that rename are not followed)."""
        found: set[str] = set()
        seen: set[tuple[str, str, str]] = set()
        todo = [(path, "", "")]
        while todo:
            current, prefix, suffix = todo.pop()
            if (current, prefix, suffix) in seen:
                continue
            seen.add((current, prefix, suffix))
            if not (self.tree / current).is_dir():
                found.update(prefix + n + suffix for n in self._claims_in_file(current))
                continue
            data = self.kustomization(current)
            own_prefix, own_suffix = str(data.get("namePrefix") or ""), str(data.get("nameSuffix") or "")
            todo.extend((ref, prefix + own_prefix, own_suffix + suffix) for ref in self.refs(current))
        return tuple(sorted(found))

    def _claims_in_file(self, path: str) -> list[str]:
        file = self.tree / path
        if not file.is_file():
            return []
        text = file.read_text(encoding="utf-8", errors="replace")
        if not _CLAIM_DOCUMENT.search(text):
            return []
        return [str(d["metadata"]["name"]) for d in yaml.load_all(text, Loader=_LOADER)
                if isinstance(d, dict) and d.get("kind") == CLAIM_KIND and isinstance(d.get("metadata"), dict)
                and d["metadata"].get("name")]
