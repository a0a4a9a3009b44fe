"""Images of upstream Kubeflow components, built here from toolchain tools ([component_images]).

Each is a static binary on a minimal root, tagged with the exact upstream name the manifests use,
so the render needs no image change and kubelet never pulls (the manifests say IfNotPresent).
Cached like every node-image step: a second build does nothing.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from infra.nodeimage.build import Build, bin_of
from infra.nodeimage.pins import load_pins
from infra.nodeimage.steps import StepLog
from infra.toolchain import install as installer
from infra.toolchain.model import load_toolchain
from infra.versions import VERSIONS_FILE


@dataclass(frozen=True)
class ComponentImage:
    ref: str
    binary: str
    path: str
    user: str


def component_images(path: Path = VERSIONS_FILE) -> dict[str, ComponentImage]:
    table = tomllib.loads(path.read_text()).get("component_images", {})
    return {ref: ComponentImage(ref, str(v["binary"]), str(v["path"]), str(v["user"])) for ref, v in table.items()}


def build_component_images(refs: Iterable[str] = (), *, say: Callable[[str], None] = print,
                           sources: Path | None = None) -> list[str]:
    """Build the named images (default: all of [component_images]); returns their references."""
    known = component_images()
    wanted = list(refs) or list(known)
    unknown = [r for r in wanted if r not in known]
    if unknown:
        raise KeyError(f"no [component_images] entry for {', '.join(unknown)}; known: {', '.join(known)}")
    toolchain = load_toolchain()
    pins = load_pins()
    extra = {toolchain.tool_for_binary(known[r].binary).name: toolchain.tool_for_binary(known[r].binary)
             for r in wanted}
    pins = dataclasses.replace(pins, tools={**pins.tools, **extra})
    build = Build(pins=pins, log=StepLog(say), sources=sources or installer.sources_dir(None))
    for tool in extra.values():
        outcome = installer.install_tool(tool, sources=build.sources, say=lambda line: None)
        say(f"  tool {tool.name} {tool.version}: {'built' if outcome.status == 'installed' else 'cached'}")
    for ref in wanted:
        spec = known[ref]
        build.mini_image(ref, {spec.path.lstrip("/"): bin_of(pins, spec.binary)}, [spec.path], spec.user)
    say(f"component images: {build.log.summary()}")
    return wanted
