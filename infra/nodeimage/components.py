"""Images of upstream Kubeflow components, built here ([component_images] in versions.toml).

Two kinds, both tagged with the exact upstream name the manifests use, so the render needs no
image change (only a pull policy where upstream says Always or `:latest`):

- binary images: a static binary from a toolchain tool on a minimal root, with the numeric
  non-root user upstream's image runs as (the manifests set `runAsNonRoot` without `runAsUser`);
- recipe images ([image_recipes.*]): Debian images made with `docker build` on a Debian base
  built here by debootstrap: KServe's Python servers, and the stand-in gateway's nginx.

Every image is keyed by its inputs (a label on the image): a second build does nothing, a changed
pin rebuilds only what depends on it.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from infra.nodeimage.build import Build, NodeImageError, bin_of, is_static
from infra.nodeimage.pins import load_pins
from infra.nodeimage.steps import StepLog
from infra.toolchain import install as installer
from infra.toolchain.model import ToolchainError, load_toolchain
from infra.versions import VERSIONS_FILE


@dataclass(frozen=True)
class ComponentImage:
    """One [component_images] entry: a binary image (binary, path, user) or a recipe's target."""

    ref: str
    binary: str = ""
    path: str = ""
    user: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    recipe: str = ""
    target: str = ""


def _entry(ref: str, table: Mapping[str, object]) -> ComponentImage:
    allowed = {"binary", "path", "user", "env", "recipe", "target"}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ToolchainError(f"component_images.{ref!r}: unknown key(s) {', '.join(unknown)}; allowed: "
                             f"{', '.join(sorted(allowed))}")
    env = table.get("env", {})
    if not isinstance(env, dict):
        raise ToolchainError(f"component_images.{ref!r}.env must be a table of strings")
    image = ComponentImage(ref, str(table.get("binary", "")), str(table.get("path", "")), str(table.get("user", "")),
                           {str(k): str(v) for k, v in env.items()}, str(table.get("recipe", "")),
                           str(table.get("target", "")))
    if bool(image.recipe) == bool(image.binary):
        raise ToolchainError(f"component_images.{ref!r}: give either binary (with path and user) or recipe")
    if image.binary and not (image.path.startswith("/") and image.user.isdigit()):
        raise ToolchainError(f"component_images.{ref!r}: a binary image needs an absolute path and a numeric user")
    return image


def component_images(path: Path = VERSIONS_FILE) -> dict[str, ComponentImage]:
    table = tomllib.loads(path.read_text()).get("component_images", {})
    return {ref: _entry(ref, value) for ref, value in table.items()}


def build_component_images(refs: Iterable[str] = (), *, say: Callable[[str], None] = print,
                           sources: Path | None = None) -> list[str]:
    """Build the named images (default: all of [component_images]); returns their references."""
    from infra.nodeimage import recipe_images, recipes

    known = component_images()
    wanted = list(refs) or list(known)
    unknown = [r for r in wanted if r not in known]
    if unknown:
        raise KeyError(f"no [component_images] entry for {', '.join(unknown)}; known: {', '.join(known)}")
    toolchain = load_toolchain()
    pins = load_pins()
    binaries = [known[r] for r in wanted if known[r].binary]
    recipe_names = [known[r].recipe for r in wanted if known[r].recipe]
    needed = [c.binary for c in binaries] + recipe_images.binaries_of(recipe_names)
    extra = {toolchain.tool_for_binary(b).name: toolchain.tool_for_binary(b) for b in needed}
    pins = dataclasses.replace(pins, tools={**pins.tools, **extra})
    build = Build(pins=pins, log=StepLog(say), sources=sources or installer.sources_dir(None))
    for tool in extra.values():
        outcome = installer.install_tool(tool, sources=build.sources, say=lambda line: None)
        say(f"  tool {tool.name} {tool.version}: {'built' if outcome.status == 'installed' else 'cached'} "
            f"({outcome.route} route, {outcome.seconds:.0f}s)")
    for ref in wanted:
        spec = known[ref]
        if spec.binary:
            binary = bin_of(pins, spec.binary)
            if not is_static(binary):
                raise NodeImageError(f"{binary} is not a static binary, so it cannot run in the image {ref} (an "
                                     f"install from before its route was static): `kfstack tools install --force "
                                     f"{toolchain.tool_for_binary(spec.binary).name}`")
            build.mini_image(ref, {spec.path.lstrip("/"): binary}, [spec.path], spec.user, env=spec.env)
    recipe_refs = [known[r] for r in wanted if known[r].recipe]
    if recipe_refs:
        try:
            recipe_images.build_recipe_images(build, [(c.ref, c.recipe, c.target) for c in recipe_refs])
        except recipes.RecipeError as exc:
            raise NodeImageError(str(exc)) from None
    say(f"component images: {build.log.summary()}")
    return wanted
