"""The rendered objects' shared types: what render produces and patches, apply, admission, outputs and
the tests read.

A leaf module (it imports nothing of the project) so that the modules that make objects and the
modules that change or order them can all import these types at the top, without importing each
other: render calls the patches, and the patches only need the type of what they patch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]


@dataclass
class Rendered:
    """The objects a stack applies, and how they came to be."""

    objects: list[Obj]
    release: str
    components: list[str]
    tree: Path
    adjustments: list[str] = field(default_factory=list)
    # component/part -> its objects (Kind/name): the parts the stack leaves out (infra/patches/parts.py).
    left_out: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def find(self, kind: str, name: str | None = None, namespace: str | None = None) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind
                and (name is None or o["metadata"]["name"] == name)
                and (namespace is None or o["metadata"].get("namespace") == namespace)]

    def to_yaml(self) -> str:
        return yaml.safe_dump_all(self.objects, sort_keys=False, default_flow_style=False)


def group_of(obj: Obj) -> str:
    """An object's API group ("" for the core group)."""
    api = obj["apiVersion"]
    return api.split("/")[0] if "/" in api else ""


def object_key(obj: Obj) -> str:
    """A stable identity: group/Kind:namespace/name."""
    group = group_of(obj) or "core"
    meta = obj["metadata"]
    ns = meta.get("namespace", "")
    return f"{group}/{obj['kind']}:{ns}/{meta['name']}" if ns else f"{group}/{obj['kind']}:{meta['name']}"
