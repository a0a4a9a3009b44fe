"""Where a release's manifests tree comes from: a local path, or a pinned tag fetched once.

Fetched trees live in the user cache, keyed by tag, and are verified against the checksum in
versions.toml. Local paths serve air-gapped installs and the project's own tests.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from infra.errors import UserError
from infra.paths import manifests_cache
from infra.versions import load_versions

ENV_MANIFESTS = "KFSTACK_MANIFESTS"
FETCH_TIMEOUT_S = 120


class ManifestsError(UserError, RuntimeError):
    pass


def check_tree(path: Path) -> Path:
    """A manifests tree must look like upstream's: common/ and applications/ at its root."""
    path = path.expanduser().resolve()
    missing = _missing(path)
    if missing:
        raise ManifestsError(f"{path} is not a Kubeflow manifests tree (missing {missing})")
    return path


def _missing(path: Path) -> str:
    return ", ".join(f"{d}/" for d in ("common", "applications") if not (path / d).is_dir())


def resolve_tree(release: str, configured: str | None = None, override: str | None = None) -> Path:
    """The tree to render: explicit override, then stack config, then $KFSTACK_MANIFESTS, then fetch."""
    for candidate in (override, configured, os.environ.get(ENV_MANIFESTS)):
        if candidate:
            return check_tree(Path(candidate))
    return fetch_release(release)


def extract_safely(tar: tarfile.TarFile, into: Path) -> None:
    """Unpack refusing anything that would land outside `into` or is not a plain file or directory.

    Python's "data" filter does this where it exists (3.11.4 and later); Debian 12's Python 3.11.2
    has no `filter` argument, so there the same rule is applied here.
    """
    if hasattr(tarfile, "data_filter"):
        tar.extractall(into, filter="data")
        return
    root = into.resolve()
    members = tar.getmembers()
    for member in members:
        inside = (root / member.name).resolve().is_relative_to(root)
        if member.name.startswith("/") or not inside or not (member.isfile() or member.isdir()):
            raise tarfile.TarError(f"refusing member {member.name!r}: only files and directories inside "
                                   "the archive's own tree are unpacked")
    tar.extractall(into, members=members)  # every member checked above


def cached_tree(release: str) -> Path | None:
    """The release's tree in the user cache when a fetch completed, else None."""
    target = manifests_cache() / release
    return target if (target / ".complete").exists() else None


def fetch_release(release: str) -> Path:
    """The release's tree, downloaded once into the user cache (through $KFSTACK_RELEASE_MIRROR when set)."""
    from infra.toolchain.release import mirrored

    cached = cached_tree(release)
    if cached is not None:
        return cached
    target = manifests_cache() / release
    spec = load_versions().release(release)
    target.parent.mkdir(parents=True, exist_ok=True)
    url = mirrored(spec.archive_url)
    print(f"fetching Kubeflow manifests {release} from {url}", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        archive = Path(tmp) / "manifests.tar.gz"
        try:
            with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as resp, \
                    archive.open("wb") as out:
                shutil.copyfileobj(resp, out)
        except OSError as exc:
            raise ManifestsError(
                f"could not download {url}: {exc}. Without network, point the stack at a "
                f"local copy: `pulumi config set --path kubeflow.manifests /path/to/manifests` or "
                f"export {ENV_MANIFESTS}=/path/to/manifests") from exc
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if spec.sha256 and digest != spec.sha256:
            raise ManifestsError(f"checksum mismatch for {spec.archive_url}: expected {spec.sha256}, "
                                 f"got {digest}; refusing to use it")
        if not spec.sha256:
            print(f"warning: no recorded checksum for {release}; recorded {digest} on first use",
                  file=sys.stderr)
        unpacked = Path(tmp) / "tree"
        try:
            with tarfile.open(archive) as tar:
                extract_safely(tar, unpacked)
        except tarfile.TarError as exc:  # not a tar.gz, or a member the filter refuses
            raise ManifestsError(f"{url} is not a usable archive ({exc}); nothing was cached") from None
        roots = [p for p in unpacked.iterdir() if p.is_dir()]
        if len(roots) != 1:
            raise ManifestsError(f"unexpected archive layout in {url}")
        if _missing(roots[0]):
            raise ManifestsError(f"{url} is not an archive of a Kubeflow manifests tree (missing "
                                 f"{_missing(roots[0])}); nothing was cached")
        (roots[0] / ".sha256").write_text(digest + "\n")
        (roots[0] / ".complete").write_text(release + "\n")
        if target.exists():
            shutil.rmtree(target)
        roots[0].rename(target)
    return target
