"""The module and source routes: Go builds that work where only package registries are reachable.

Builds run in a work directory under the cache, never in the source tree (which is shared and
read-only in CI), with `-mod=mod` so go.mod and go.sum may be completed from the proxy. Every
command's output goes to one log per install, and a failure quotes its tail and the log's path.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from infra.run import CommandError, run
from infra.toolchain.model import ModuleRoute, SourceRoute, Tool, ToolchainError

GO_TIMEOUT = 1800.0  # one go command; a cold kube-apiserver build takes about 4 minutes on 2 cores
LOG_TAIL_LINES = 30


class BuildError(ToolchainError):
    """A build command failed; the message has the command, exit code, log tail and log path."""


def go_binary() -> str:
    found = shutil.which("go")
    if not found:
        raise ToolchainError("the module and source routes need Go (1.24 or newer) on PATH: install it from "
                             "https://go.dev/dl/ or your package manager, or use --route release")
    return found


def ldflags(tool: Tool) -> str:
    """Stripped binaries (the provider is 469 MB unstripped) with the tool's version variables."""
    parts = ["-s", "-w"]
    for var in tool.link_vars:
        parts += ["-X", tool.expand(var)]
    return " ".join(parts)


def go_env(gonosumdb: Sequence[str] = (), gobin: Path | None = None, *, static: bool = False) -> dict[str, str]:
    """Variables every Go command of an install gets (merged into os.environ by `run`)."""
    env = {"GOFLAGS": "-mod=mod -buildvcs=false"}
    if static:
        env["CGO_ENABLED"] = "0"
    skip = [p for p in os.environ.get("GONOSUMDB", "").split(",") if p] + list(gonosumdb)
    if skip:
        env["GONOSUMDB"] = ",".join(dict.fromkeys(skip))
    if gobin is not None:
        env["GOBIN"] = str(gobin)
    return env


def wrapper_gomod(tool: Tool, route: ModuleRoute) -> str:
    """go.mod of a module that exists only to build `route.packages` with the replaces they need."""
    lines = [f"module kfstack.local/{tool.name}", "", f"go {route.go}", "", "require ("]
    lines += [f"\t{tool.expand(req)}" for req in route.require]
    lines += [")", ""]
    lines += [f"replace {tool.expand(rep)}" for rep in route.replace]
    return "\n".join(lines).rstrip() + "\n"


def installed_name(package: str) -> str:
    """The file name `go install` gives a package: its last element, skipping a /vN suffix."""
    parts = package.rstrip("/").split("/")
    if len(parts) > 1 and re.fullmatch(r"v\d+", parts[-1]):
        return parts[-2]
    return parts[-1]


class BuildLog:
    """Runs the commands of one install, appending everything they print to one log file."""

    def __init__(self, tool: Tool, path: Path, say: Callable[[str], None] = print) -> None:
        self.tool = tool
        self.path = path
        self.say = say
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {tool.name} {tool.version}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")

    def _append(self, text: str) -> None:
        with open(self.path, "a") as handle:
            handle.write(text)

    def run(self, args: Sequence[str], *, cwd: Path, env: Mapping[str, str], label: str,
            timeout: float = GO_TIMEOUT) -> None:
        extras = " ".join(f"{k}={v}" for k, v in sorted(env.items()))
        self._append(f"\n$ cd {cwd} && {extras} {' '.join(args)}\n")
        start = time.monotonic()
        try:
            proc = run(args, timeout=timeout, env=env, cwd=cwd)
        except CommandError as exc:
            self._append(exc.stdout + exc.stderr)
            self._append(f"\n# failed: {exc.returncode if exc.returncode is not None else 'timeout'}\n")
            raise BuildError(self._failure(args, cwd, exc)) from None
        self._append(proc.stdout + proc.stderr)
        self.say(f"  {label} ({time.monotonic() - start:.1f}s)")

    def _failure(self, args: Sequence[str], cwd: Path, exc: CommandError) -> str:
        tail = self.path.read_text().splitlines()[-LOG_TAIL_LINES:]
        code = f"exit code {exc.returncode}" if exc.returncode is not None else "timed out"
        return (f"building {self.tool.name} {self.tool.version} failed: {' '.join(args)} ({code}, in {cwd})\n"
                f"--- last {len(tail)} lines of the log ---\n" + "\n".join(tail) +
                f"\n--- full log: {self.path}")


def build_module(tool: Tool, bin_dir: Path, work: Path, log: BuildLog) -> None:
    """`go install pkg@version`, or `go build` in a generated wrapper module."""
    route = tool.module
    if route is None:
        raise ToolchainError(f"{tool.name} has no module route")
    go = go_binary()
    flags = ldflags(tool)
    tags = ["-tags", ",".join(route.tags)] if route.tags else []
    if not route.uses_wrapper:
        targets = [f"{pkg}@{tool.version}" for pkg in route.packages.values()]
        work.mkdir(parents=True, exist_ok=True)
        log.run([go, "install", *tags, "-ldflags", flags, *targets], cwd=work,
                env=go_env(route.gonosumdb, gobin=bin_dir, static=route.static),
                label=f"go install {' '.join(targets)}")
        for binary, pkg in route.packages.items():
            produced = bin_dir / installed_name(pkg)
            if produced.name != binary and produced.exists():
                produced.rename(bin_dir / binary)
        return
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "go.mod").write_text(wrapper_gomod(tool, route))
    env = go_env(route.gonosumdb, static=route.static)
    requires = [tool.expand(req).replace(" ", "@") for req in route.require]
    log.run([go, "get", *requires], cwd=work, env=env, label=f"go get {' '.join(requires)}")
    for binary, pkg in route.packages.items():
        log.run([go, "build", *tags, "-ldflags", flags, "-o", str(bin_dir / binary), pkg], cwd=work, env=env,
                label=f"go build {binary}")


def source_tree(tool: Tool, sources: Path | None) -> Path:
    """The tool's directory in the sources folder, or an error saying how to provide it."""
    route = tool.source
    if route is None:
        raise ToolchainError(f"{tool.name} has no source route")
    if sources is None:
        raise ToolchainError(f"{tool.name} is built from a local source tree: pass --sources DIR or set "
                             "KFSTACK_TOOLCHAIN_SOURCES (on the project's machines: ../shared/toolchain/sources)")
    tree = sources / tool.expand(route.dir)
    if not tree.is_dir():
        raise ToolchainError(f"{tool.name}: source tree {tree} not found (expected {tool.expand(route.dir)}/ "
                             f"in {sources})")
    return tree


def build_source(tool: Tool, sources: Path | None, bin_dir: Path, work: Path, log: BuildLog) -> None:
    """Copy the tree under `work`, adjust its go.mod, generate, build, and copy its scripts."""
    route: SourceRoute | None = tool.source
    tree = source_tree(tool, sources)
    assert route is not None  # source_tree checked
    go = go_binary()
    shutil.rmtree(work, ignore_errors=True)
    work.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(tree, work, symlinks=True)
    for path in [work, *work.rglob("*")]:  # source trees may be read-only; the copy must not be
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)
    module_dir = work / route.module_dir
    env = go_env(route.gonosumdb, static=route.static)
    edits = [tool.expand(arg) for arg in route.mod_edit_args()]
    if edits:
        log.run([go, "mod", "edit", *edits], cwd=module_dir, env=env, label="go mod edit", timeout=60)
    if route.generate is not None:
        gen = route.generate
        gen_env = {**env, **{k: tool.expand(v) for k, v in gen.env.items()}}
        log.run([go, *gen.args], cwd=module_dir / gen.dir, env=gen_env, label=f"go {' '.join(gen.args)}")
    flags = ldflags(tool)
    for binary, pkg in route.packages.items():
        log.run([go, "build", "-ldflags", flags, "-o", str(bin_dir / binary), pkg], cwd=module_dir, env=env,
                label=f"go build {binary}")
    for script in route.scripts:
        shutil.copyfile(module_dir / script, bin_dir / script)
        (bin_dir / script).chmod(0o755)
