"""When the fresh-machine test must run again: the digest of the README set-up's inputs, and the
record of its last pass on this machine.

`tests/test_toolchain_routes_fresh.py` runs the README's two commands in a clean Debian container
(about half an hour). What it proves changes only when an input of that set-up changes, so in CI
it runs when the digest of `INPUTS` differs from the one its last pass recorded in the user cache;
with the digest unchanged it reports NOT RUN and names that pass, never a pass of its own.
`KFSTACK_FRESH_CONTAINER_TEST=1` forces it, `=0` leaves it out, and outside CI it runs only when
asked.

The digest is of file contents, their paths relative to the checkout and their executable bit
(git keeps all three), so every clone of one commit has the same digest: no mtimes, no absolute
paths, no `__pycache__`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from infra.paths import cache_root

ENV = "KFSTACK_FRESH_CONTAINER_TEST"

# The README set-up's inputs (paths relative to the checkout; a folder means every file in it),
# each with why a change to it can change what the fresh-machine test proves.
INPUTS: tuple[tuple[str, str], ...] = (
    ("scripts", "the two commands themselves, and what they source"),
    ("pyproject.toml", "what the set-up's pip install puts in .venv, and the test markers"),
    ("constraints.txt", "the versions that pip install pins"),
    ("infra/versions.toml", "the pinned tool versions and the digests their downloads are checked against"),
    ("infra/toolchain", "kfstack tools install: each tool's route, download, verification and lock"),
    ("infra/runtime", "kfstack runtime start: the container runtime the set-up starts, or reports missing"),
    ("infra/manifests/source.py", "kfstack manifests fetch: the trees the set-up fetches for the render tier"),
    ("infra/manifests/releases", "the manifests releases that are fetched, with their pinned digests"),
    ("infra/ci", "what the test command runs around pytest: the tier record and this table"),
    ("infra/kfp/mlmd_env.py", "the ML Metadata stand-in's own venv, which the set-up builds"),
    ("infra/kfp/mlmd-requirements.txt", "the pins of that venv"),
    ("tests/toolchain_standins.py", "the stand-in release pages and module proxy: the container's network"),
    ("tests/fresh_container.py", "the clean container, what is installed in it and its environment"),
    ("tests/test_toolchain_routes_fresh.py", "what the test asserts of the two commands' output"),
)
SKIPPED_PARTS = frozenset({"__pycache__"})
SKIPPED_SUFFIXES = (".pyc",)


def _files(root: Path, relative: str) -> Iterator[Path]:
    path = root / relative
    if path.is_file():
        yield path
    elif path.is_dir():
        for child in sorted(path.rglob("*")):
            rel = child.relative_to(root)
            if child.is_file() and not SKIPPED_PARTS & set(rel.parts) and not child.name.endswith(SKIPPED_SUFFIXES):
                yield child


def inputs_digest(root: Path, inputs: tuple[tuple[str, str], ...] = INPUTS) -> str:
    """SHA-256 over each input file's relative path, executable bit and contents, in a fixed order;
    an input that is missing counts as missing (so adding it changes the digest)."""
    digest = hashlib.sha256()
    for relative, _why in inputs:
        found = False
        for path in _files(root, relative):
            found = True
            executable = "x" if path.stat().st_mode & 0o111 else "-"
            content = path.read_bytes()
            digest.update(f"{path.relative_to(root).as_posix()}\0{executable}\0{len(content)}\0".encode())
            digest.update(content)
        if not found:
            digest.update(f"{relative}\0missing\0".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class FreshPass:
    """One pass of the fresh-machine test: what it ran, when, and how long it took."""

    digest: str
    commit: str
    date: str  # UTC, ISO 8601
    seconds: float  # the two commands in the container
    setup_seconds: float | None = None
    test_seconds: float | None = None

    def summary(self) -> str:
        day = self.date[:16].replace("T", " ")
        return f"passed at {self.digest[:12]} on {day} UTC for commit {self.commit[:12]}; set-up inputs unchanged"


def record_path() -> Path:
    return cache_root() / "fresh-machine-pass.json"


def last_pass() -> FreshPass | None:
    """The recorded pass; None when there is none or it cannot be read (then the test runs)."""
    try:
        return FreshPass(**json.loads(record_path().read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def record_pass(digest: str, commit: str, seconds: float, setup_seconds: float | None = None,
                test_seconds: float | None = None) -> FreshPass:
    done = FreshPass(digest, commit, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), round(seconds, 1),
                     setup_seconds, test_seconds)
    path = record_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(asdict(done), indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return done


def not_run_reason(environ: Mapping[str, str], root: Path) -> str | None:
    """Why the fresh-machine test does not run now (a reason starting "NOT RUN"), or None to run it."""
    asked = environ.get(ENV, "")
    if asked == "1":
        return None
    if asked == "0":
        return f"NOT RUN: {ENV}=0 leaves it out"
    if environ.get("CI", "").lower() not in ("true", "1"):
        return (f"NOT RUN: the fresh-container test takes about half an hour; it runs in CI (CI=true) "
                f"when the set-up's inputs changed, or with {ENV}=1")
    last = last_pass()
    if last is not None and last.digest == inputs_digest(root):
        return f"NOT RUN: {last.summary()}"
    return None
