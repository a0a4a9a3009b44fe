"""Recipe images ([image_recipes.*] in versions.toml): Debian images made by `docker build`.

What cannot be a static binary on a minimal root: KServe's Python model server and storage
initializer (`kserve[storage]` from PyPI, plus the two parts upstream does not publish there, from
a local copy of KServe's tag), and the stand-in gateway's nginx (Debian's package). Each builds on
one Debian base made here by debootstrap (no registry), with the host's network for apt and pip
(`--network host`) and the host's CA bundle for pip. Every image carries the digest of its inputs
as a label, so a second build does nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.nodeimage.build import DOCKER_TIMEOUT, KEY_LABEL, Build, docker, docker_cli, image_key, replacing
from infra.nodeimage.steps import digest, file_digest, nodeimage_dir
from infra.versions import VERSIONS_FILE, load_versions
from smoke_tests.run import CommandError, run

HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
BASE_TAG = "kfstack/debian:{suite}"


class RecipeError(RuntimeError):
    """A recipe cannot be built here; the message names what is missing and the fix."""


@dataclass(frozen=True)
class Recipe:
    name: str
    table: Mapping[str, Any]

    def get(self, key: str) -> Any:
        if key not in self.table:
            raise RecipeError(f"image_recipes.{self.name}.{key} is missing in {VERSIONS_FILE.name}")
        return self.table[key]


def load_recipes(path: Path = VERSIONS_FILE) -> dict[str, Recipe]:
    return {name: Recipe(name, table)
            for name, table in tomllib.loads(path.read_text()).get("image_recipes", {}).items()}


def context_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(dir=nodeimage_dir(), prefix="recipe-")


def docker_build(context: Path, tag: str, key: str, target: str = "") -> None:
    """`docker build` of `context` as `tag`, labelled with its inputs `key`; a failure quotes the output."""
    args = [docker_cli(), "build", "-q", "--network", "host", "--label", f"{KEY_LABEL}={key}", "-t", tag]
    if target:
        args += ["--target", target]
    try:
        run([*args, str(context)], timeout=DOCKER_TIMEOUT * 2, env={"DOCKER_BUILDKIT": "0"})
    except CommandError as exc:
        raise RecipeError(f"docker build of {tag} failed:\n{(exc.stderr or exc.stdout or str(exc))[-3000:]}") from None


def debian_base(build: Build) -> tuple[str, str]:
    """A minimal Debian image (debootstrap minbase, the node image's suite and mirror): (tag, key)."""
    mirror = build.mirror()
    key = digest({"suite": build.pins.debian_suite, "mirror": mirror, "variant": "minbase"})
    tag = BASE_TAG.format(suite=build.pins.debian_suite)

    def make() -> None:
        if shutil.which("debootstrap") is None or os.geteuid() != 0:
            raise RecipeError("the recipe images' Debian base is made with debootstrap as root: "
                              "apt-get install debootstrap, and run as root")
        with tempfile.TemporaryDirectory(dir=nodeimage_dir(), prefix="debian-base-") as tmp:
            root = Path(tmp) / "root"
            debs = nodeimage_dir() / "debs"
            debs.mkdir(parents=True, exist_ok=True)
            run(["debootstrap", "--variant=minbase", f"--cache-dir={debs}", build.pins.debian_suite, str(root),
                 mirror], timeout=3600)
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for item in (root / junk).glob("*"):
                    if item.is_file():
                        item.unlink()
            archive = Path(tmp) / "root.tar"
            run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(archive), "."], timeout=900)
            docker("import", "--change", f"LABEL {KEY_LABEL}={key}", "--change",
                   "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", str(archive), tag)

    build.log.run("image debian base", key, lambda: image_key(tag) == key, replacing(tag, make))
    return tag, key


def _tree_digest(root: Path) -> str:
    """A digest of a directory's files (names and contents)."""
    return digest({str(p.relative_to(root)): file_digest(p) for p in sorted(root.rglob("*")) if p.is_file()})


# --- KServe's Python images ----------------------------------------------------------------------

KSERVE_DOCKERFILE = """\
FROM {base} AS common
COPY build/ /etc/kfstack-build/
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null \\
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/kserve/venv \\
 && PIP_CERT=/etc/kfstack-build/ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 \\
    /opt/kserve/venv/bin/pip install -q --no-cache-dir -c /etc/kfstack-build/constraints.txt {packages} \\
 && /opt/kserve/venv/bin/pip freeze > /etc/kfstack-build/installed.txt
RUN groupadd -g {user} kserve && useradd -u {user} -g {user} -m -d /home/kserve -s /usr/sbin/nologin kserve
COPY sklearnserver/ /opt/kserve/sklearnserver/sklearnserver/
COPY storage-initializer/ /storage-initializer/
RUN chmod 0755 /storage-initializer/scripts/initializer-entrypoint
ENV VIRTUAL_ENV=/opt/kserve/venv PATH=/opt/kserve/venv/bin:/usr/local/bin:/usr/bin:/bin \\
    PYTHONPATH=/opt/kserve/sklearnserver HOME=/home/kserve
USER {user}

FROM common AS sklearnserver
ENTRYPOINT ["python3", "-m", "sklearnserver"]

FROM common AS storage-initializer
ENTRYPOINT ["/storage-initializer/scripts/initializer-entrypoint"]
"""


def kserve_python(build: Build, base: tuple[str, str], recipe: Recipe, targets: Sequence[tuple[str, str]]) -> None:
    """KServe's sklearn server and storage initializer, one Dockerfile, one image per target."""
    version = str(recipe.get("version"))
    tree = source_tree(build, recipe, version)
    python = tree / "python"
    parts = {"sklearnserver": python / "sklearnserver" / "sklearnserver",
             "storage-initializer": python / "storage-initializer"}
    missing = [str(p) for p in parts.values() if not p.is_dir()]
    if missing:
        raise RecipeError(f"image_recipes.{recipe.name}: {', '.join(missing)} not found in the KServe source copy")
    release = load_versions().release(load_versions().default_release)
    packages = [str(p).format(number=version.removeprefix("v")) for p in recipe.get("packages")]
    packages += list(release.sklearn_server_packages)
    constraints = "".join(f"{c}\n" for c in recipe.get("constraints"))
    user = str(recipe.get("user"))
    dockerfile = KSERVE_DOCKERFILE.format(base=base[0], packages=" ".join(f"'{p}'" for p in packages), user=user)
    common = {"base": base[1], "dockerfile": dockerfile, "constraints": constraints,
              "parts": {name: _tree_digest(path) for name, path in parts.items()},
              "ca": file_digest(HOST_CA) if HOST_CA.is_file() else ""}
    for ref, target in targets:
        if target not in ("sklearnserver", "storage-initializer"):
            raise RecipeError(f"component_images.{ref!r}: target {target!r} is not one of sklearnserver, "
                              f"storage-initializer")
        key = digest({**common, "target": target, "ref": ref})

        def make(ref: str = ref, target: str = target, key: str = key) -> None:
            with context_dir() as tmp:
                context = Path(tmp)
                (context / "Dockerfile").write_text(dockerfile)
                (context / "build").mkdir()
                (context / "build" / "constraints.txt").write_text(constraints)
                if HOST_CA.is_file():
                    shutil.copyfile(HOST_CA, context / "build" / "ca.crt")
                else:
                    (context / "build" / "ca.crt").write_text("")
                for name, path in parts.items():
                    shutil.copytree(path, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                docker_build(context, ref, key, target)

        def done(ref: str = ref, key: str = key) -> bool:
            return image_key(ref) == key

        build.log.run(f"image {ref}", key, done, replacing(ref, make))


def source_tree(build: Build, recipe: Recipe, version: str) -> Path:
    name = str(recipe.get("sources")).format(version=version)
    if build.sources is None:
        raise RecipeError(f"image_recipes.{recipe.name} builds from a local copy of {name}/ (parts of it are not on "
                          f"PyPI): pass --sources DIR or set KFSTACK_TOOLCHAIN_SOURCES=DIR, where DIR holds {name}/")
    tree = build.sources / name
    if not tree.is_dir():
        raise RecipeError(f"image_recipes.{recipe.name}: source tree {tree} not found (expected {name}/ in "
                          f"{build.sources})")
    return tree


# --- the stand-in gateway's nginx ----------------------------------------------------------------

GATEWAY_DOCKERFILE = """\
FROM {base}
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends {packages} >/dev/null \\
 && rm -rf /var/lib/apt/lists/* \\
 && (getent group {user} || groupadd -g {user} kfgateway) \\
 && (getent passwd {user} || useradd -r -u {user} -g {user} -M -d /nonexistent -s /usr/sbin/nologin kfgateway) \\
 && mkdir -p /etc/kfstack-gateway \\
 && touch /run/nginx.pid \\
 && chown -R {user}:{user} /var/lib/nginx /var/log/nginx /run/nginx.pid \\
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
USER {user}
ENTRYPOINT ["nginx", "-g", "daemon off;", "-c", "/etc/kfstack-gateway/nginx.conf"]
"""


def standin_gateway(build: Build, base: tuple[str, str], recipe: Recipe, ref: str) -> None:
    """Debian's nginx, run as a numeric non-root user with its config mounted at /etc/kfstack-gateway."""
    user = str(recipe.get("user"))
    packages = [str(p) for p in recipe.get("apt")]
    dockerfile = GATEWAY_DOCKERFILE.format(base=base[0], packages=" ".join(packages), user=user)
    key = digest({"base": base[1], "dockerfile": dockerfile, "ref": ref})
    wanted = str(recipe.get("nginx"))

    def make() -> None:
        with context_dir() as tmp:
            (Path(tmp) / "Dockerfile").write_text(dockerfile)
            docker_build(Path(tmp), ref, key)
        out = run([docker_cli(), "run", "--rm", "--entrypoint", "nginx", ref, "-v"], timeout=120)
        found = re.search(r"nginx/(\d+\.\d+)", out.stderr + out.stdout)
        if not found or found.group(1) != wanted:
            run([docker_cli(), "rmi", ref], timeout=120, check=False)
            raise RecipeError(f"{ref}: Debian's package gave nginx {found.group(1) if found else '?'}, the tag says "
                              f"{wanted}: update image_recipes.{recipe.name}.nginx and the tag together")

    build.log.run(f"image {ref}", key, lambda: image_key(ref) == key, replacing(ref, make))
