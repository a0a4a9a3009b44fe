"""The smoke suite's image: Debian's Python with the suite installed as its own distribution
(`smoke_tests/pyproject.toml`: its dependencies from PyPI, pinned by constraints.txt; nothing of the
Pulumi program), tagged by a digest of its inputs, so an unchanged suite is never rebuilt."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

from infra.nodeimage.build import Build, image_key, replacing
from infra.nodeimage.pins import load_pins
from infra.nodeimage.recipes import HOST_CA, debian_base, docker_build
from infra.nodeimage.steps import StepLog

REPO = Path(__file__).resolve().parents[2]
REPOSITORY = "kfstack/smoke-suite"
USER_ID = 65532
SUITE = REPO / "smoke_tests"
# The image's inputs: the suite's own distribution and the pins (paths relative to the repository).
SOURCES = ("constraints.txt", "smoke_tests")


def suite_requirements(suite: Path = SUITE) -> tuple[str, ...]:
    """What the suite's distribution depends on (its pyproject.toml, the one list of them)."""
    project = tomllib.loads((suite / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return tuple(project["dependencies"])


def dockerfile(base: str, *, host_ca: bool = True) -> str:
    """On `base`, the recipe images' Debian (debootstrap minbase, built here); with `host_ca`, pip
    trusts the host's CA bundle (an egress that inspects TLS), removed at the end."""
    reqs = " ".join(f'"{r}"' for r in suite_requirements())
    ca = "COPY ca.crt /tmp/host-ca.crt\n" if host_ca else ""
    cert = "PIP_CERT=/tmp/host-ca.crt " if host_ca else ""
    return f"""FROM {base}
{ca}ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180
RUN apt-get update && apt-get install -y --no-install-recommends python3-venv python3-pip \\
    && rm -rf /var/lib/apt/lists/*
# The libraries first, so a change to the suite's code rebuilds only the last layers.
COPY src/constraints.txt /tmp/constraints.txt
RUN python3 -m venv /suite \\
    && {cert}/suite/bin/pip install --no-cache-dir -c /tmp/constraints.txt {reqs}
COPY src/smoke_tests /src
RUN {cert}/suite/bin/pip install --no-cache-dir --no-deps /src && rm -rf /src /tmp/host-ca.crt
ENV PATH=/suite/bin:/usr/bin:/bin HOME=/tmp
USER {USER_ID}
ENTRYPOINT ["python", "-m", "smoke_tests.incluster"]
"""


def _built(relative: Path) -> bool:
    """What Python or a local `pip wheel` left in the tree: not the suite's source."""
    return any(part in ("__pycache__", "build", "dist") or part.endswith(".egg-info") for part in relative.parts)


def _files(repo: Path) -> list[Path]:
    out: list[Path] = []
    for name in SOURCES:
        path = repo / name
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and not _built(p.relative_to(path)))
        else:
            out.append(path)
    return out


def inputs_digest(base: tuple[str, str], repo: Path = REPO) -> str:
    """What decides the image: the Dockerfile, the base image (tag and key) and every source file."""
    sha = hashlib.sha256(dockerfile(base[0], host_ca=HOST_CA.exists()).encode())
    sha.update("\0".join(base).encode())
    for path in _files(repo):
        sha.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()[:16]


def build_suite_image(*, say: Callable[[str], None] = print, repo: Path = REPO) -> str:
    """Build (or find) the suite's image, and the Debian base under it; returns its reference."""
    log = StepLog(say)
    base = debian_base(Build(pins=load_pins(), log=log))
    key = inputs_digest(base, repo)
    tag = f"{REPOSITORY}:{key}"

    def build() -> None:
        with tempfile.TemporaryDirectory(prefix="kfstack-suite-image-") as tmp:
            context = Path(tmp)
            (context / "Dockerfile").write_text(dockerfile(base[0], host_ca=HOST_CA.exists()), encoding="utf-8")
            if HOST_CA.exists():
                shutil.copyfile(HOST_CA, context / "ca.crt")
            for path in _files(repo):
                dest = context / "src" / path.relative_to(repo)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
            docker_build(context, tag, key)

    log.run("image smoke-suite", key, lambda: image_key(tag) == key, replacing(tag, build))
    return tag
