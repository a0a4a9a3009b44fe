"""The release route: official downloads, verified before anything is installed.

Each asset is checked against the strongest evidence available, in this order:

1. a SHA-256 recorded in versions.toml (reviewed with the code);
2. the digest pinned in the user's toolchain lock by an earlier install (see lock.py);
3. the checksums file the same release publishes (`checksums` in the tool's table);
4. for upstreams that publish no checksum at all (no `checksums` key), nothing: the first download
   is trusted, said so, and pinned, so every later install must match it.

A mismatch, a checksums file that cannot be fetched or has no entry for the asset, and a download
that ends early are refused with a message that says which and what to do. Downloads go to a work
directory and binaries to a staging directory that is renamed into place only when all is well.

`KFSTACK_RELEASE_MIRROR` points every download at a mirror laid out like the upstream hosts
(`<mirror>/<host>/<path>`); pins stay keyed by the upstream URL, so a mirror cannot change them.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.toolchain import lock
from infra.toolchain.model import Platform, ReleaseRoute, Tool, ToolchainError
from infra.toolchain.progress import Progress, terminal

PROBE_TIMEOUT = 3.0
DOWNLOAD_TIMEOUT = 120.0  # per blocking read, not for the whole file
MIRROR_ENV = "KFSTACK_RELEASE_MIRROR"
_CHUNK = 1 << 20
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


class ReleaseRefusedError(ToolchainError):
    """The release route cannot be used for this tool (it has none)."""


class ChecksumMismatchError(ToolchainError):
    """A downloaded file is not what upstream published (or what was pinned before)."""


class ChecksumsUnavailableError(ToolchainError):
    """The release's checksums file could not be fetched, or does not list the asset."""


class TruncatedDownloadError(ToolchainError):
    """The connection ended before the whole file arrived."""


@dataclass(frozen=True)
class Asset:
    """One file to download, how to check it, and which of the tool's binaries it provides."""

    url: str  # upstream URL (the lock's key; mirrored only when fetched)
    key: str  # the key of its checksum in versions.toml: "<os>-<arch>" or "<binary>-<os>-<arch>"
    sha256: str  # recorded in versions.toml, "" when none is
    checksums: str  # URL of the checksums file that lists it, "" when upstream publishes none
    archive: str  # "", "tar.gz" or "zip"
    binaries: tuple[str, ...]

    @property
    def filename(self) -> str:
        return urllib.parse.unquote(self.url.rsplit("/", 1)[-1])


def assets(tool: Tool, plat: Platform) -> list[Asset]:
    """The downloads that make up `tool` on `plat` (one, or one per binary)."""
    route = _route(tool)
    archive = route.archive_for(plat.os)
    names = _names(route, plat)
    platform_key = f"{plat.os}-{plat.arch}"
    groups = [(b, (b,), f"{b}-{platform_key}") for b in tool.binaries] if route.per_binary else \
        [("", tool.binaries, platform_key)]
    return [
        Asset(url=tool.expand(route.url, binary=binary, **names), key=key, sha256=route.sha256.get(key, ""),
              checksums=tool.expand(route.checksums, binary=binary, **names) if route.checksums else "",
              archive=archive, binaries=binaries)
        for binary, binaries, key in groups
    ]


def _names(route: ReleaseRoute, plat: Platform) -> dict[str, str]:
    """{os}, {arch} and {ext} as this tool's release file names spell them (pulumi says x64)."""
    return {"os": route.os_names.get(plat.os, plat.os), "arch": route.arch_names.get(plat.arch, plat.arch),
            "ext": route.archive_for(plat.os)}


def _route(tool: Tool) -> ReleaseRoute:
    if tool.release is None:
        raise ReleaseRefusedError(f"{tool.name} has no release route in versions.toml (upstream publishes no "
                                  "binaries)")
    return tool.release


def mirrored(url: str) -> str:
    """`url` as fetched: unchanged, or rewritten to $KFSTACK_RELEASE_MIRROR/<host>/<path>."""
    base = os.environ.get(MIRROR_ENV, "").rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if not base or parts.scheme not in ("http", "https"):  # a local file:// asset is never mirrored
        return url
    return f"{base}/{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def probe(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """True when `url`, as fetched (mirrored), answers a HEAD request with success within `timeout` s."""
    return reachable(mirrored(url), timeout)


class _KeepHead(urllib.request.HTTPRedirectHandler):
    """Follow redirects with HEAD (Python 3.11 turns a redirected HEAD into a GET of the whole file)."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and req.get_method() == "HEAD":
            new.method = "HEAD"
        return new


_PROBE_OPENER = urllib.request.build_opener(_KeepHead)


def reachable(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """True when `url` itself answers a HEAD request with success within `timeout` seconds."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with _PROBE_OPENER.open(request, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        return False


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str, *, source: str, vouched_by: str, fix: str) -> str:
    """The file's SHA-256; raises unless it equals `expected` (the file is left for inspection)."""
    actual = sha256_of(path)
    if actual != expected.lower():
        raise ChecksumMismatchError(
            f"SHA-256 mismatch for {source}:\n  expected {expected} ({vouched_by})\n  got      {actual}\n"
            f"  file     {path}\nNothing was installed. {fix}")
    return actual


def digest_from_checksums(text: str, filename: str) -> str | None:
    """The digest listed for `filename` in a checksums file, or None.

    Reads what upstreams publish: `sha256sum` lines ("<hex>  <name>", "<hex> *<name>", names with a
    directory), and files holding one bare digest (dl.k8s.io's `.sha256`, minikube's).
    """
    entries: list[tuple[str, str]] = []
    for line in text.splitlines():
        fields = line.split()
        if fields and _HEX64.fullmatch(fields[0]):
            name = fields[1].lstrip("*") if len(fields) > 1 else ""
            entries.append((fields[0].lower(), name))
    for digest, name in entries:
        if name and (name == filename or name.removeprefix("./") == filename):
            return digest
    if len(entries) == 1 and not entries[0][1]:
        return entries[0][0]
    return None


def fetch_text(url: str, timeout: float = 30.0) -> str:
    """A small text file (a checksums file); raises ChecksumsUnavailableError saying why it failed."""
    try:
        with urllib.request.urlopen(mirrored(url), timeout=timeout) as response:
            return str(response.read(1 << 20).decode("utf-8", errors="replace"))
    except urllib.error.HTTPError as exc:
        raise ChecksumsUnavailableError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise ChecksumsUnavailableError(str(getattr(exc, "reason", exc))) from None


def download(url: str, dest: Path, *, say: Callable[[str], None] = print,
             timeout: float = DOWNLOAD_TIMEOUT) -> int:
    """Fetch `url` (mirrored) into `dest`, reporting progress; returns the size. Refuses a short file."""
    shown = mirrored(url)
    progress = Progress(f"download {dest.name}", say, stream=terminal())
    received = 0
    total = 0
    try:
        with urllib.request.urlopen(shown, timeout=timeout) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                received += len(chunk)
                progress.update(f"{received / 1e6:.1f} of {total / 1e6:.1f} MB" if total
                                else f"{received / 1e6:.1f} MB")
    except urllib.error.HTTPError as exc:
        raise ToolchainError(f"download of {shown} failed: HTTP {exc.code} {exc.reason}") from None
    except http.client.IncompleteRead as exc:
        received += len(exc.partial)
        raise _truncated(shown, received, total) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise ToolchainError(f"download of {shown} failed after {received} bytes: "
                             f"{getattr(exc, 'reason', exc)}; run the install again") from None
    finally:
        progress.done()
    if total and received != total:
        raise _truncated(shown, received, total)
    return received


def _truncated(url: str, received: int, total: int) -> TruncatedDownloadError:
    return TruncatedDownloadError(
        f"download of {url} was truncated: got {received} of {total} bytes (the connection ended early). "
        "Nothing was installed; run the install again.")


def expected_digest(tool: Tool, asset: Asset) -> tuple[str, str]:
    """(digest, what vouches for it) for `asset`, before downloading it; ("", "first use") when nothing can.

    Raises ChecksumsUnavailableError when the release publishes a checksums file that cannot be read.
    """
    if asset.sha256:
        return asset.sha256, "versions.toml"
    pin = lock.get("assets", asset.url)
    if pin is not None:
        return pin.value, f"the digest pinned in {lock.lock_path()} on {pin.recorded_at[:10]} (from {pin.verified_by})"
    if not asset.checksums:
        return "", "first use"
    record = (f"record the SHA-256 of {asset.filename} in infra/versions.toml "
              f"[tools.{tool.name}.release.sha256] under \"{asset.key}\"")
    try:
        text = fetch_text(asset.checksums)
    except ChecksumsUnavailableError as exc:
        raise ChecksumsUnavailableError(
            f"{tool.name} {tool.version}: the release's checksums file {mirrored(asset.checksums)} could not be "
            f"fetched ({exc}), so {asset.filename} cannot be verified and was not downloaded. Run the install "
            f"again later, or {record} from that file{_alternatives(tool)}") from None
    digest = digest_from_checksums(text, asset.filename)
    if digest is None:
        raise ChecksumsUnavailableError(
            f"{tool.name} {tool.version}: the checksums file {mirrored(asset.checksums)} lists no SHA-256 for "
            f"{asset.filename}, so it cannot be verified and was not downloaded. Check the release, or "
            f"{record}{_alternatives(tool)}")
    return digest, f"checksums file {asset.checksums}"


def _alternatives(tool: Tool) -> str:
    others = [r for r in tool.routes() if r != "release"]
    return f", or use --route {' or '.join(others)}" if others else ""


def extract(archive_path: Path, archive: str, binaries: tuple[str, ...], bin_dir: Path) -> None:
    """Copy the named binaries (matched by file name, wherever they sit) out of an archive."""
    wanted = set(binaries)
    found: set[str] = set()
    if archive == "":
        (name,) = binaries
        shutil.copyfile(archive_path, bin_dir / name)
        found.add(name)
    elif archive == "tar.gz":
        try:
            with tarfile.open(archive_path, "r:gz") as tar:
                for member in tar.getmembers():
                    base = Path(member.name).name
                    if member.isfile() and base in wanted and base not in found:
                        source = tar.extractfile(member)
                        assert source is not None  # regular files always have content
                        with source, open(bin_dir / base, "wb") as out:
                            shutil.copyfileobj(source, out, _CHUNK)
                        found.add(base)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ToolchainError(f"{archive_path.name} is not a readable tar.gz archive: {exc}") from None
    elif archive == "zip":
        try:
            with zipfile.ZipFile(archive_path) as zf:
                for info in zf.infolist():
                    base = Path(info.filename).name
                    if not info.is_dir() and base in wanted and base not in found:
                        with zf.open(info) as source, open(bin_dir / base, "wb") as out:
                            shutil.copyfileobj(source, out, _CHUNK)
                        found.add(base)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ToolchainError(f"{archive_path.name} is not a readable zip archive: {exc}") from None
    else:
        raise ToolchainError(f"unsupported archive format {archive!r}")
    missing = sorted(wanted - found)
    if missing:
        raise ToolchainError(f"{archive_path.name} does not contain {', '.join(missing)}")
    for name in binaries:
        (bin_dir / name).chmod(0o755)


def install_release(tool: Tool, plat: Platform, bin_dir: Path, work: Path,
                    say: Callable[[str], None] = print) -> None:
    """Download, verify and unpack every asset of `tool` into `bin_dir`, pinning each digest in the lock."""
    work.mkdir(parents=True, exist_ok=True)
    for asset in assets(tool, plat):
        expected, vouched_by = expected_digest(tool, asset)
        target = work / asset.filename
        say(f"  download {mirrored(asset.url)}")
        size = download(asset.url, target, say=say)
        if expected:
            fix = ("Run the install again; if it persists, the release or a proxy between you and it changed the "
                   "file: report it, and do not record the new value.")
            if vouched_by.startswith("the digest pinned"):
                fix += (f" If upstream re-published this release on purpose, delete its entry from "
                        f"{lock.lock_path()} to verify it afresh.")
            digest = verify_sha256(target, expected, source=mirrored(asset.url), vouched_by=vouched_by, fix=fix)
            say(f"  verified {asset.filename} ({size / 1e6:.1f} MB) against {vouched_by}")
        else:
            digest = sha256_of(target)
            say(f"  WARNING: upstream publishes no checksum for {asset.filename}: trusting this first download "
                f"(sha256 {digest}) and pinning it in {lock.lock_path()}; later installs must match it")
        extract(target, asset.archive, asset.binaries, bin_dir)
        pin = lock.get("assets", asset.url)
        if pin is None or pin.value != digest:
            source = "first use" if not expected else vouched_by
            lock.record("assets", asset.url, digest, verified_by=source, tool=tool.name)
