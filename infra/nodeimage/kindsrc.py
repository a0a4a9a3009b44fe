"""What the node image takes from kind's own module: its base-image files, its default storage
manifest and the storage image names that manifest uses. Read from the pinned kind version in the
Go module cache (downloaded through the module proxy), never copied into the project."""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from infra.toolchain.gobuild import go_binary, go_env
from smoke_tests.run import CommandError, run


class KindSourceError(RuntimeError):
    """kind's module could not be read; the message says what is missing."""


def module_dir(module: str, version: str) -> Path:
    """The directory of `module@version` in the module cache, downloaded when missing."""
    with tempfile.TemporaryDirectory() as tmp:  # outside any module, so go.mod of the cwd is irrelevant
        try:
            out = run([go_binary(), "mod", "download", "-json", f"{module}@{version}"], timeout=600, cwd=tmp,
                      env=go_env()).stdout
        except CommandError as exc:
            raise KindSourceError(f"downloading {module}@{version} failed:\n{exc}") from None
    return Path(json.loads(out)["Dir"])


@dataclass(frozen=True)
class KindSources:
    version: str
    base_files: Path
    storage_manifest: str
    storage_images: dict[str, str]  # "provisioner"/"helper" -> image reference


def _go_string_consts(source: str) -> dict[str, str]:
    """The string constants of a Go file, including ones joined with `+` from literals and other
    constants (kind builds its storage manifest that way)."""
    consts: dict[str, str] = {}
    token = re.compile(r'\s*(`[^`]*`|"(?:[^"\\]|\\.)*"|[A-Za-z_]\w*)')
    for match in re.finditer(r"^const (\w+) = ", source, re.MULTILINE):
        parts, pos = [], match.end()
        while (item := token.match(source, pos)) is not None:
            text = item.group(1)
            if text[0] in "`\"":
                parts.append(text[1:-1] if text[0] == "`" else json.loads(text))
            elif text in consts:
                parts.append(consts[text])
            else:
                break
            pos = item.end()
            plus = re.compile(r"[ \t]*\+\s*").match(source, pos)
            if plus is None:
                break
            pos = plus.end()
        if parts:
            consts[match.group(1)] = "".join(parts)
    return consts


def kind_sources(version: str) -> KindSources:
    root = module_dir("sigs.k8s.io/kind", version)
    base = root / "images" / "base" / "files"
    storage_go = root / "pkg" / "build" / "nodeimage" / "const_storage.go"
    if not base.is_dir() or not storage_go.is_file():
        raise KindSourceError(f"kind {version} at {root} lacks images/base/files or const_storage.go")
    consts = _go_string_consts(storage_go.read_text())
    try:
        images = {"provisioner": consts["storageProvisionerImage"], "helper": consts["storageHelperImage"]}
        manifest = consts["defaultStorageManifest"]
    except KeyError as exc:
        raise KindSourceError(f"kind {version}'s const_storage.go no longer defines {exc}") from None
    return KindSources(version=version, base_files=base, storage_manifest=manifest, storage_images=images)
