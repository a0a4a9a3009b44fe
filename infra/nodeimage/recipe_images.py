"""Every recipe image ([image_recipes.*]): which builder makes each, and which toolchain binaries
they copy. Above both recipe modules (recipes.py: the Debian base, KServe, the gateway;
kfp_recipes.py: the Pipelines images), so neither imports the other back."""

from __future__ import annotations

from collections.abc import Sequence

from infra.nodeimage.build import Build
from infra.nodeimage.kfp_recipes import BUILDERS, recipe_binaries
from infra.nodeimage.recipes import (
    RecipeError,
    debian_base,
    kserve_python,
    load_recipes,
    source_tree,
    standin_gateway,
)
from infra.versions import VERSIONS_FILE


def binaries_of(names: Sequence[str]) -> list[str]:
    """The toolchain binaries the named recipes copy into their images (installed before they build)."""
    known = load_recipes()
    return [b for name in dict.fromkeys(names) if name in known for b in recipe_binaries(known[name]).values()]


def build_recipe_images(build: Build, wanted: Sequence[tuple[str, str, str]]) -> None:
    """(ref, recipe, target) for each image; the Debian base first, once."""
    recipes = load_recipes()
    unknown = sorted({r for _, r, _ in wanted if r not in recipes})
    if unknown:
        raise RecipeError(f"no [image_recipes.{unknown[0]}] in {VERSIONS_FILE.name}; known: {', '.join(recipes)}")
    kserve = [(ref, target) for ref, recipe, target in wanted if recipe == "kserve-python"]
    if kserve:  # a missing source copy fails before anything is built
        source_tree(build, recipes["kserve-python"], str(recipes["kserve-python"].get("version")))
    base = debian_base(build)
    if kserve:
        kserve_python(build, base, recipes["kserve-python"], kserve)
    for ref, recipe, _ in wanted:
        if recipe == "standin-gateway":
            standin_gateway(build, base, recipes[recipe], ref)
        elif recipe in BUILDERS:
            BUILDERS[recipe](build, base, recipes[recipe], ref)
        elif recipe != "kserve-python":
            raise RecipeError(f"component_images.{ref!r}: recipe {recipe!r} has no builder (kserve-python, "
                              f"standin-gateway, {', '.join(BUILDERS)})")
