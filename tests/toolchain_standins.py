"""Stand-ins for the network a user's install reaches: release pages and a Go module proxy, both local.

`ReleaseSite` serves files at `<host>/<path>` of their upstream URLs over HTTP, so the real URL
templates of infra/versions.toml are exercised with `KFSTACK_RELEASE_MIRROR` pointing here. It
packs stand-in binaries the way each upstream packs its releases (facts in `PACKING`) and writes
each release's checksums file in that upstream's format. It can also misbehave on purpose: cut a
download short, or stall in the middle of one until released.

`GoProxy` writes a directory in the layout the go command reads through `GOPROXY=file://...`
(`<module>/@v/list`, `.info`, `.mod`, `.zip`, and `<commit>.info` for commit queries).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import urllib.parse
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from infra.toolchain import release
from infra.toolchain.model import Platform, Tool

ChecksumStyle = Literal["list", "named", "bare", "none"]


@dataclass(frozen=True)
class Packing:
    """How an upstream packs one release asset and publishes its checksum."""

    prefix: str = ""  # directory inside the archive, a template like the URL's
    contents: tuple[str, ...] = ()  # every file in the archive (the tool's binaries and what comes with them)
    checksums: ChecksumStyle = "list"  # list: sha256sum lines for every asset; named: one line; bare: digest


_PULUMI = Packing(prefix="pulumi/", contents=(
    "pulumi", "pulumi-language-python", "pulumi-language-python-exec", "pulumi-resource-pulumi-python",
    "pulumi-language-nodejs", "pulumi-analyzer-policy"))

# What each release looks like upstream (asset names come from the URL templates in versions.toml).
PACKING: dict[str, Packing] = {
    "pulumi": _PULUMI,
    "pulumi-language-python": _PULUMI,  # the same tarball as the CLI
    "pulumi-resource-kubernetes": Packing(contents=("pulumi-resource-kubernetes", "LICENSE", "README.md")),
    "kind": Packing(checksums="named"),  # kind-<os>-<arch>.sha256sum
    "kubernetes": Packing(checksums="bare"),  # <binary>.sha256
    "etcd": Packing(prefix="etcd-{version}-{os}-{arch}/", contents=("etcd", "etcdctl", "etcdutl", "README.md")),
    "kwok": Packing(checksums="none"),
    "kustomize": Packing(contents=("kustomize",)),
    "oauth2-proxy": Packing(prefix="oauth2-proxy-{version}.{os}-{arch}/", contents=("oauth2-proxy",),
                            checksums="named"),  # <asset>-sha256sum.txt
    "minikube": Packing(checksums="bare"),  # minikube-<os>-<arch>.sha256
    "actionlint": Packing(contents=("actionlint", "LICENSE.txt", "README.md")),  # actionlint_<n>_checksums.txt
}


def stand_in(binary: str, tag: str = "") -> bytes:
    """A tiny executable that says what it is (`tag` tells two versions apart)."""
    return f"#!/bin/sh\necho '{binary} stand-in {tag}'\n".encode()


@dataclass
class ReleaseSite:
    """Files served at `<root>/<host>/<path>`, and how the server should treat some of them."""

    root: Path
    base_url: str = ""
    requests: list[str] = field(default_factory=list)
    truncate: set[str] = field(default_factory=set)  # upstream URLs cut short
    stall: set[str] = field(default_factory=set)  # upstream URLs that stop half-way until `resume` is set
    redirect: dict[str, str] = field(default_factory=dict)  # upstream URL -> where a 302 sends it
    stalled: threading.Event = field(default_factory=threading.Event)
    resume: threading.Event = field(default_factory=threading.Event)

    def path_of(self, upstream_url: str) -> Path:
        parts = urllib.parse.urlsplit(upstream_url)
        return self.root / parts.netloc / urllib.parse.unquote(parts.path).lstrip("/")

    def put(self, upstream_url: str, data: bytes) -> None:
        path = self.path_of(upstream_url)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def publish(self, tool: Tool, plat: Platform, tag: str = "", real: dict[str, bytes] | None = None
                ) -> dict[str, bytes]:
        """Pack `tool` for `plat` as upstream does, with the checksums file; returns binary -> content.

        Files come from `real` (binaries built here) where it has them, else are stand-ins.
        """
        packing = PACKING[tool.name]
        contents: dict[str, bytes] = {}
        listed: dict[str, list[str]] = {}
        for asset in release.assets(tool, plat):
            names = packing.contents or asset.binaries
            files = {n: (real or {}).get(n) or stand_in(n, tag) for n in names}
            contents.update({b: files[b] for b in asset.binaries})
            data = _pack(asset.archive, tool.expand(packing.prefix, os=plat.os, arch=plat.arch), files)
            self.put(asset.url, data)
            digest = hashlib.sha256(data).hexdigest()
            if packing.checksums == "none" or not asset.checksums:
                continue
            if packing.checksums == "bare":
                self.put(asset.checksums, f"{digest}\n".encode())
            elif packing.checksums == "named":
                self.put(asset.checksums, f"{digest}  {asset.filename}\n".encode())
            else:  # one file for the release; another platform's line first, as real files have
                listed.setdefault(asset.checksums, [f"{'0' * 64}  {asset.filename}.other-platform"])
                listed[asset.checksums].append(f"{digest}  {asset.filename}")
        for url, lines in listed.items():
            self.put(url, ("\n".join(lines) + "\n").encode())
        return contents


def publish_releases(site: ReleaseSite, tools: Iterable[Tool], plat: Platform, real: Mapping[str, bytes]) -> None:
    """Publish every tool in `tools` from one pool of real binaries (binary name -> content).

    Tools can share an asset (Pulumi's CLI tarball holds its language host too), so each publish
    repacks the whole asset: packed from only its own tool's binaries, a later publish would put
    stand-ins over the earlier tool's real ones.
    """
    for tool in tools:
        site.publish(tool, plat, real=dict(real))


def _pack(archive: str, prefix: str, files: dict[str, bytes]) -> bytes:
    if archive == "":
        (data,) = files.values()
        return data
    buffer = io.BytesIO()
    if archive == "zip":
        with zipfile.ZipFile(buffer, "w") as zf:
            for name, data in files.items():
                zf.writestr(prefix + name, data)
        return buffer.getvalue()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:  # fast: the CLI is 150 MB
        if prefix:
            info = tarfile.TarInfo(prefix.rstrip("/"))
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _handler(site: ReleaseSite) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(site.root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: requests are recorded in `site.requests` instead."""

        def do_HEAD(self) -> None:
            site.requests.append(f"HEAD {self.path}")
            if not self._redirected():
                super().do_HEAD()

        def _redirected(self) -> bool:
            """Answer a 302, as GitHub does for release downloads, when the URL is listed in `redirect`."""
            target = site.redirect.get("https://" + self.path.lstrip("/"))
            if target is None:
                return False
            self.send_response(302)
            self.send_header("Location", f"{site.base_url}/{target.removeprefix('https://')}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True

        def do_GET(self) -> None:
            site.requests.append(self.path)
            if self._redirected():
                return
            upstream = "https://" + self.path.lstrip("/")
            if upstream not in site.truncate | site.stall:
                super().do_GET()
                return
            data = site.path_of(upstream).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            if upstream in site.stall:
                site.stalled.set()
                site.resume.wait(timeout=120)
            self.close_connection = True

    return Handler


@contextmanager
def serve(site: ReleaseSite) -> Iterator[ReleaseSite]:
    """Serve `site` on a free local port for the duration of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    server.daemon_threads = True
    site.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="release-site", daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.resume.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class GoProxy:
    """A module proxy directory for `GOPROXY=file://<root>`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def add(self, module: str, version: str, files: dict[str, str], *, commit: str = "",
            time: str = "2025-10-20T12:00:00Z") -> None:
        """One module version; `commit` also answers a query by that commit hash."""
        gomod = files["go.mod"]
        base = self.root / _escape(module) / "@v"
        base.mkdir(parents=True, exist_ok=True)
        info = json.dumps({"Version": version, "Time": time})
        (base / f"{version}.info").write_text(info)
        (base / f"{version}.mod").write_text(gomod)
        with zipfile.ZipFile(base / f"{version}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            for name, text in files.items():
                zf.writestr(f"{module}@{version}/{name}", text.encode("utf-8", errors="surrogateescape"))
        if commit:
            (base / f"{commit}.info").write_text(info)
        with open(base / "list", "a") as handle:
            handle.write(version + "\n")

    def add_tree(self, module: str, version: str, tree: Path, *, commit: str = "") -> None:
        """A module version from a source tree, as the go command zips one: no nested modules, no .git."""
        nested = [p.parent for p in tree.rglob("go.mod") if p.parent != tree]
        files: dict[str, str] = {}
        for path in sorted(tree.rglob("*")):
            if path.is_file() and not path.is_symlink() and ".git" not in path.relative_to(tree).parts \
                    and not any(path.is_relative_to(n) for n in nested):
                files[path.relative_to(tree).as_posix()] = path.read_text(encoding="utf-8", errors="surrogateescape")
        self.add(module, version, files, commit=commit)

    def add_mod_only(self, module: str, version: str, gomod: str) -> None:
        """A version the module graph names but the build never needs (only its go.mod is read)."""
        base = self.root / _escape(module) / "@v"
        base.mkdir(parents=True, exist_ok=True)
        (base / f"{version}.mod").write_text(gomod)
        (base / f"{version}.info").write_text(json.dumps({"Version": version, "Time": "2025-02-19T00:00:00Z"}))


def _escape(module: str) -> str:
    """The go command's case encoding of module paths: upper-case letters become !lower."""
    return "".join(f"!{c.lower()}" if c.isupper() else c for c in module)
