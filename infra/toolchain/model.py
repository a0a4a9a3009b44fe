"""A typed view of the `[tools.*]` tables in versions.toml, checked once when loaded.

The installer, `kfstack doctor` and every caller of `tool_path` read the same model, so a typo in
the versions file fails loudly here instead of as a confusing build error later.
"""

from __future__ import annotations

import platform
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from infra.versions import VERSIONS_FILE, load_versions

Route = Literal["release", "module", "source"]
ROUTES: tuple[Route, ...] = ("release", "module", "source")

# v1.2.3; also v4.00 for projects that tag two numbers (SeaweedFS), whose {patch} is then "".
_VERSION = re.compile(r"^v(\d+)\.(\d+)(?:\.(\d+))?$")


class ToolchainError(RuntimeError):
    """Any toolchain failure whose message tells the user what to do next."""


@dataclass(frozen=True)
class Platform:
    """An OS/architecture pair in Go's spelling (linux/amd64), which most release URLs use."""

    os: str
    arch: str

    @classmethod
    def host(cls) -> Platform:
        machine = platform.machine().lower()
        arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
        return cls(os=sys.platform, arch=arch)


@dataclass(frozen=True)
class ReleaseRoute:
    """Official downloads: a URL template and the published SHA-256 of each asset."""

    url: str
    sha256: Mapping[str, str]
    checksums: str = ""  # URL template of the checksums file the release publishes; "" when it has none
    archive: str = ""  # "", "tar.gz" or "zip"; "" means the asset is the binary itself
    archive_by_os: Mapping[str, str] = field(default_factory=dict)
    arch_names: Mapping[str, str] = field(default_factory=dict)
    os_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def per_binary(self) -> bool:
        """True when each binary is its own asset (the URL names {binary})."""
        return "{binary}" in self.url

    @property
    def publishes_checksums(self) -> bool:
        """False when upstream publishes no checksum: the first download is then trusted and pinned."""
        return bool(self.checksums)

    def archive_for(self, os_name: str) -> str:
        return self.archive_by_os.get(os_name, self.archive)


@dataclass(frozen=True)
class ModuleRoute:
    """A build from the Go module proxy: `go install`, or `go build` in a wrapper module."""

    packages: Mapping[str, str]
    require: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    go: str = "1.24"  # the go directive of the wrapper, and the oldest Go that builds the tool
    gonosumdb: tuple[str, ...] = ()
    # static: CGO_ENABLED=0, so the binaries also run inside minimal container images (the kind
    # node image puts them there); cgo: CGO_ENABLED=1, for code that needs cgo (then the binary needs
    # glibc, so its image has a Debian base); neither: the go command's default. tags: Go build tags.
    static: bool = False
    cgo: bool = False
    tags: tuple[str, ...] = ()
    # For modules whose tags the go command cannot name (Dex tags v2.x without a /v2 module path): the
    # git repository whose tag {version} gives the commit that fills {commit} in `require`, unless
    # `commit` records it.
    tag_repo: str = ""
    commit: str = ""
    # Files the first required module's repository holds as symlinks, which module zips leave out
    # (Argo's signal_linux.go): link -> the file it points to, both from the module's root. The
    # build then uses a copy of that module with each link restored as a copy of its target.
    symlinks: Mapping[str, str] = field(default_factory=dict)
    # Patches (unified diffs, paths from the repository root, `patch -p1` inside the module) applied to
    # that same copy: changes the project makes to upstream, each file saying what and why.
    patches: tuple[str, ...] = ()

    @property
    def needs_commit(self) -> bool:
        return any("{commit}" in req for req in self.require)

    @property
    def uses_wrapper(self) -> bool:
        """go install refuses modules that need replace directives; those get a wrapper module."""
        return bool(self.require)


@dataclass(frozen=True)
class GenerateStep:
    """A `go <args>` step some trees need before building (pulumi-kubernetes' schema embedding)."""

    args: tuple[str, ...]
    dir: str = "."
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceRoute:
    """A build from a copy of a local source tree, for modules the proxy refuses."""

    dir: str
    packages: Mapping[str, str]
    module_dir: str = "."
    drop_replace: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    require: tuple[str, ...] = ()
    generate: GenerateStep | None = None
    scripts: tuple[str, ...] = ()
    gonosumdb: tuple[str, ...] = ()
    static: bool = False  # as ModuleRoute.static, cgo and tags
    cgo: bool = False
    tags: tuple[str, ...] = ()

    def mod_edit_args(self) -> list[str]:
        """The `go mod edit` flags this tree needs, or [] when it builds as it is."""
        args = [f"-dropreplace={path}" for path in self.drop_replace]
        args += [f"-replace={spec}" for spec in self.replace]
        args += [f"-require={spec}" for spec in self.require]
        return args


@dataclass(frozen=True)
class Tool:
    """One install unit: a version, the binaries it provides, and the routes that can produce them."""

    name: str
    version: str
    binaries: tuple[str, ...]
    default: bool = True
    link_vars: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    pulumi_plugin: str = ""  # "resource kubernetes": register the binary in Pulumi's plugin cache
    # The exact Go every Go route builds it with (GOTOOLCHAIN=go<version>; the go command fetches it
    # from the module proxy): for tools whose behaviour changes with the Go release (Dex).
    go_toolchain: str = ""
    release: ReleaseRoute | None = None
    module: ModuleRoute | None = None
    source: SourceRoute | None = None

    @property
    def number(self) -> str:
        """The version without its leading "v" (what Pulumi's plugin commands want)."""
        return self.version.removeprefix("v")

    def routes(self) -> tuple[Route, ...]:
        return tuple(r for r in ROUTES if getattr(self, r) is not None)

    def template_vars(self) -> dict[str, str]:
        match = _VERSION.match(self.version)
        if not match:
            raise ToolchainError(f"tools.{self.name}.version {self.version!r} is not of the form v1.2.3 (or v1.2)")
        major, minor, patch = match.groups()
        return {"version": self.version, "number": self.number, "major": major, "minor": minor,
                "patch": patch or ""}

    def expand(self, template: str, **extra: str) -> str:
        """Fill {version}, {number}, {major}, {minor}, {patch} and any `extra` into a template."""
        values = {**self.template_vars(), **extra}
        try:
            return template.format_map(values)
        except KeyError as exc:
            raise ToolchainError(f"tools.{self.name}: unknown placeholder {exc} in {template!r}") from None


@dataclass(frozen=True)
class Toolchain:
    """Every declared tool, in the order of the versions file (which is also the install order)."""

    tools: Mapping[str, Tool]

    def get(self, name: str) -> Tool:
        """A tool by its name or by the name of a binary it provides."""
        if name in self.tools:
            return self.tools[name]
        for tool in self.tools.values():
            if name in tool.binaries:
                return tool
        known = ", ".join(self.tools)
        raise ToolchainError(f"unknown tool or binary {name!r}; known tools: {known}")

    def tool_for_binary(self, binary: str) -> Tool:
        for tool in self.tools.values():
            if binary in tool.binaries:
                return tool
        known = ", ".join(b for t in self.tools.values() for b in t.binaries)
        raise ToolchainError(f"no tool in {VERSIONS_FILE.name} provides {binary!r}; known binaries: {known}")

    def defaults(self) -> list[Tool]:
        return [t for t in self.tools.values() if t.default]

    def with_requirements(self, selected: list[Tool]) -> list[Tool]:
        """`selected` plus what they require, in file order, so pulumi comes before its plugins."""
        wanted = {t.name for t in selected}
        pending = list(selected)
        while pending:
            for dep in pending.pop().requires:
                if dep not in wanted:
                    wanted.add(dep)
                    pending.append(self.get(dep))
        return [t for t in self.tools.values() if t.name in wanted]


def _strings(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ToolchainError(f"{where}.{key} must be a list of strings")
    return tuple(value)


def _mapping(table: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = table.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ToolchainError(f"{where}.{key} must be a table of strings")
    return dict(value)


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ToolchainError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _flag(table: Mapping[str, Any], key: str, where: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise ToolchainError(f"{where}.{key} must be true or false")
    return value


def _cgo(table: Mapping[str, Any], where: str) -> tuple[bool, bool]:
    """(static, cgo), which cannot both be set: one says CGO_ENABLED=0, the other 1."""
    static, cgo = _flag(table, "static", where), _flag(table, "cgo", where)
    if static and cgo:
        raise ToolchainError(f"{where}: static (CGO_ENABLED=0) and cgo (CGO_ENABLED=1) exclude each other")
    return static, cgo


def _release(table: Mapping[str, Any], where: str) -> ReleaseRoute:
    _check_keys(table, {"url", "sha256", "checksums", "archive", "archive_by_os", "arch_names", "os_names"},
                where)
    archive = str(table.get("archive", ""))
    if archive == "" and str(table["url"]).endswith((".tar.gz", ".tgz")):
        archive = "tar.gz"
    for fmt in [archive, *_mapping(table, "archive_by_os", where).values()]:
        if fmt not in ("", "tar.gz", "zip"):
            raise ToolchainError(f"{where}: archive format {fmt!r} is not one of tar.gz, zip")
    sha = _mapping(table, "sha256", where)
    for key, digest in sha.items():
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ToolchainError(f"{where}.sha256.{key} is not a lower-case hex SHA-256")
    return ReleaseRoute(url=str(table["url"]), sha256=sha, checksums=str(table.get("checksums", "")),
                        archive=archive, archive_by_os=_mapping(table, "archive_by_os", where),
                        arch_names=_mapping(table, "arch_names", where),
                        os_names=_mapping(table, "os_names", where))


def _module(table: Mapping[str, Any], where: str) -> ModuleRoute:
    _check_keys(table, {"packages", "require", "replace", "go", "gonosumdb", "tag_repo", "commit", "static", "cgo",
                        "tags", "symlinks", "patches"}, where)
    static, cgo = _cgo(table, where)
    route = ModuleRoute(packages=_mapping(table, "packages", where), require=_strings(table, "require", where),
                        replace=_strings(table, "replace", where), go=str(table.get("go", "1.24")),
                        gonosumdb=_strings(table, "gonosumdb", where), tag_repo=str(table.get("tag_repo", "")),
                        commit=str(table.get("commit", "")), static=static, cgo=cgo,
                        tags=_strings(table, "tags", where), symlinks=_mapping(table, "symlinks", where),
                        patches=_strings(table, "patches", where))
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?", route.go):
        raise ToolchainError(f"{where}.go {route.go!r} is not a Go version like 1.25.0")
    if route.commit and not re.fullmatch(r"[0-9a-f]{40}", route.commit):
        raise ToolchainError(f"{where}.commit must be a full 40-character git commit hash")
    if (route.symlinks or route.patches) and not route.require:
        raise ToolchainError(f"{where}.symlinks and .patches change the first required module: set require")
    if any(p.startswith("/") or ".." in p.split("/") for item in route.symlinks.items() for p in item):
        raise ToolchainError(f"{where}.symlinks paths must be relative to the module's root, without ..")
    if route.needs_commit and not (route.tag_repo or route.commit):
        raise ToolchainError(f"{where}.require uses {{commit}}: set tag_repo (or commit)")
    return route


def _source(table: Mapping[str, Any], where: str) -> SourceRoute:
    _check_keys(table, {"dir", "packages", "module_dir", "drop_replace", "replace", "require", "generate",
                        "scripts", "gonosumdb", "static", "cgo", "tags"}, where)
    static, cgo = _cgo(table, where)
    generate = None
    if "generate" in table:
        gen = table["generate"]
        _check_keys(gen, {"args", "dir", "env"}, f"{where}.generate")
        generate = GenerateStep(args=_strings(gen, "args", f"{where}.generate"), dir=str(gen.get("dir", ".")),
                                env=_mapping(gen, "env", f"{where}.generate"))
    return SourceRoute(dir=str(table["dir"]), packages=_mapping(table, "packages", where),
                       module_dir=str(table.get("module_dir", ".")),
                       drop_replace=_strings(table, "drop_replace", where),
                       replace=_strings(table, "replace", where), require=_strings(table, "require", where),
                       generate=generate, scripts=_strings(table, "scripts", where),
                       gonosumdb=_strings(table, "gonosumdb", where), static=static, cgo=cgo,
                       tags=_strings(table, "tags", where))


def parse_tool(name: str, table: Mapping[str, Any]) -> Tool:
    """Build one `Tool` from its raw table, checking what later steps rely on."""
    where = f"tools.{name}"
    _check_keys(table, {"version", "binaries", "default", "link_vars", "requires", "pulumi_plugin", "go_toolchain",
                        "release", "module", "source"}, where)
    tool = Tool(
        name=name, version=str(table["version"]), binaries=_strings(table, "binaries", where),
        default=bool(table.get("default", True)), link_vars=_strings(table, "link_vars", where),
        requires=_strings(table, "requires", where), pulumi_plugin=str(table.get("pulumi_plugin", "")),
        go_toolchain=str(table.get("go_toolchain", "")),
        release=_release(table["release"], f"{where}.release") if "release" in table else None,
        module=_module(table["module"], f"{where}.module") if "module" in table else None,
        source=_source(table["source"], f"{where}.source") if "source" in table else None,
    )
    tool.template_vars()  # validates the version
    if not tool.binaries:
        raise ToolchainError(f"{where}.binaries is empty")
    if not tool.routes():
        raise ToolchainError(f"{where} has no route (release, module or source)")
    if tool.module is not None and set(tool.module.packages) != set(tool.binaries):
        raise ToolchainError(f"{where}.module.packages must build exactly the binaries {list(tool.binaries)}")
    if tool.source is not None and set(tool.source.packages) | set(tool.source.scripts) != set(tool.binaries):
        raise ToolchainError(f"{where}.source packages and scripts must give exactly {list(tool.binaries)}")
    if tool.go_toolchain and not re.fullmatch(r"\d+\.\d+\.\d+", tool.go_toolchain):
        raise ToolchainError(f"{where}.go_toolchain {tool.go_toolchain!r} is not an exact Go release like 1.25.0")
    if tool.pulumi_plugin and len(tool.pulumi_plugin.split()) != 2:
        raise ToolchainError(f"{where}.pulumi_plugin must be '<kind> <name>', like 'resource kubernetes'")
    for var in tool.link_vars:
        if "=" not in var or any(c.isspace() for c in var):
            raise ToolchainError(f"{where}.link_vars entry {var!r} must be importpath.name=value, no spaces")
    return tool


def parse_toolchain(tables: Mapping[str, Mapping[str, Any]]) -> Toolchain:
    tools = {name: parse_tool(name, table) for name, table in tables.items()}
    for tool in tools.values():
        for dep in tool.requires:
            if dep not in tools:
                raise ToolchainError(f"tools.{tool.name}.requires names unknown tool {dep!r}")
    return Toolchain(tools=tools)


@cache
def load_toolchain() -> Toolchain:
    """The toolchain declared in infra/versions.toml."""
    return parse_toolchain(load_versions().tools)
