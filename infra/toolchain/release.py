"""The release route: official downloads, accepted only when they match a recorded SHA-256.

A release asset without a recorded checksum is refused rather than trusted on first use: what
users install must be exactly what upstream published, and the versions file is where that is
written down and reviewed.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra.toolchain.model import Platform, ReleaseRoute, Tool, ToolchainError

PROBE_TIMEOUT = 3.0
DOWNLOAD_TIMEOUT = 120.0
_CHUNK = 1 << 20


class ReleaseRefusedError(ToolchainError):
    """The release route cannot be used for this tool and platform (no route, no checksum)."""


class ChecksumMismatchError(ToolchainError):
    """A downloaded file is not what the versions file says upstream published."""


@dataclass(frozen=True)
class Asset:
    """One file to download, and which of the tool's binaries it provides."""

    url: str
    key: str  # the key of its checksum in versions.toml: "<os>-<arch>" or "<binary>-<os>-<arch>"
    sha256: str  # "" when none is recorded
    archive: str  # "", "tar.gz" or "zip"
    binaries: tuple[str, ...]


def assets(tool: Tool, plat: Platform) -> list[Asset]:
    """The downloads that make up `tool` on `plat` (one, or one per binary)."""
    route = _route(tool)
    archive = route.archive_for(plat.os)
    names = _names(route, plat)
    platform_key = f"{plat.os}-{plat.arch}"
    if route.per_binary:
        return [
            Asset(url=tool.expand(route.url, binary=b, **names), key=f"{b}-{platform_key}",
                  sha256=route.sha256.get(f"{b}-{platform_key}", ""), archive=archive, binaries=(b,))
            for b in tool.binaries
        ]
    return [Asset(url=tool.expand(route.url, binary="", **names), key=platform_key,
                  sha256=route.sha256.get(platform_key, ""), archive=archive, binaries=tool.binaries)]


def _names(route: ReleaseRoute, plat: Platform) -> dict[str, str]:
    """{os}, {arch} and {ext} as this tool's release file names spell them (pulumi says x64)."""
    return {"os": route.os_names.get(plat.os, plat.os), "arch": route.arch_names.get(plat.arch, plat.arch),
            "ext": route.archive_for(plat.os)}


def _route(tool: Tool) -> ReleaseRoute:
    if tool.release is None:
        raise ReleaseRefusedError(f"{tool.name} has no release route (upstream publishes no binaries)")
    return tool.release


def refusal(tool: Tool, plat: Platform) -> str | None:
    """Why the release route cannot install `tool` on `plat`, or None when it can."""
    if tool.release is None:
        return f"{tool.name} has no release route in versions.toml (upstream publishes no binaries)"
    missing = [a for a in assets(tool, plat) if not a.sha256]
    if not missing:
        return None
    where = "the upstream release page"
    if tool.release.checksums:
        binary = missing[0].binaries[0] if tool.release.per_binary else ""
        where = tool.expand(tool.release.checksums, binary=binary, **_names(tool.release, plat))
    keys = ", ".join(a.key for a in missing)
    return (f"no published SHA-256 recorded for {tool.name} {tool.version} asset(s) {keys} in "
            f"infra/versions.toml [tools.{tool.name}.release.sha256]; record the official value (from "
            f"{where}){_alternatives(tool)}")


def _alternatives(tool: Tool) -> str:
    others = [r for r in tool.routes() if r != "release"]
    return f", or use --route {' or '.join(others)}" if others else ""


def probe(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """True when `url` answers a HEAD request with success within `timeout` seconds."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str, *, source: str = "") -> None:
    """Raise unless `path` has the SHA-256 `expected` (the file is left for inspection)."""
    if not expected:
        raise ReleaseRefusedError(f"no recorded SHA-256 for {source or path}; refusing to trust it")
    actual = sha256_of(path)
    if actual != expected.lower():
        raise ChecksumMismatchError(
            f"SHA-256 mismatch for {source or path}:\n  expected {expected}\n  got      {actual}\n"
            f"  file     {path}\nThe download is not what upstream published; it was not installed."
        )


def download(url: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    except (urllib.error.URLError, OSError) as exc:
        raise ToolchainError(f"download of {url} failed: {exc}") from exc


def extract(archive_path: Path, archive: str, binaries: tuple[str, ...], bin_dir: Path) -> None:
    """Copy the named binaries (matched by file name, wherever they sit) out of an archive."""
    wanted = set(binaries)
    found: set[str] = set()
    if archive == "":
        (name,) = binaries
        shutil.copyfile(archive_path, bin_dir / name)
        found.add(name)
    elif archive == "tar.gz":
        with tarfile.open(archive_path, "r:gz") as tar:
            for member in tar.getmembers():
                base = Path(member.name).name
                if member.isfile() and base in wanted and base not in found:
                    source = tar.extractfile(member)
                    assert source is not None  # regular files always have content
                    with source, open(bin_dir / base, "wb") as out:
                        shutil.copyfileobj(source, out, _CHUNK)
                    found.add(base)
    elif archive == "zip":
        with zipfile.ZipFile(archive_path) as zf:
            for info in zf.infolist():
                base = Path(info.filename).name
                if not info.is_dir() and base in wanted and base not in found:
                    with zf.open(info) as source, open(bin_dir / base, "wb") as out:
                        shutil.copyfileobj(source, out, _CHUNK)
                    found.add(base)
    else:
        raise ToolchainError(f"unsupported archive format {archive!r}")
    missing = sorted(wanted - found)
    if missing:
        raise ToolchainError(f"{archive_path.name} does not contain {', '.join(missing)}")
    for name in binaries:
        (bin_dir / name).chmod(0o755)


def install_release(tool: Tool, plat: Platform, bin_dir: Path, work: Path,
                    say: Callable[[str], None] = print) -> None:
    """Download, verify and unpack every asset of `tool` into `bin_dir`."""
    reason = refusal(tool, plat)
    if reason:
        raise ReleaseRefusedError(reason)
    work.mkdir(parents=True, exist_ok=True)
    for asset in assets(tool, plat):
        target = work / (asset.url.rsplit("/", 1)[-1] or asset.key)
        say(f"  download {asset.url}")
        download(asset.url, target)
        verify_sha256(target, asset.sha256, source=asset.url)
        extract(target, asset.archive, asset.binaries, bin_dir)
