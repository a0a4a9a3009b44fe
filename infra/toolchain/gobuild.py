"""The module and source routes: Go builds for tools without release binaries, or where those are unreachable.

Builds run in a work directory under the cache, never in the source tree (which is shared and
read-only in CI), with `-mod=mod` so go.mod and go.sum may be completed from the proxy. Every
command's output goes to one log per install, and a failure quotes its tail and the log's path.
Builds run with `-v`, so the log grows one line per compiled package and the progress line can say
how far a multi-minute build has got.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from infra.paths import REPO_ROOT
from infra.toolchain import lock
from infra.toolchain.model import ModuleRoute, SourceRoute, Tool, ToolchainError
from infra.toolchain.progress import Progress, terminal
from smoke_tests.process import spawn, stop_process
from smoke_tests.run import CommandError, run
from smoke_tests.wait import WaitTimeout, wait_until

GO_TIMEOUT = 1800.0  # one go command; a cold kube-apiserver build takes about 4 minutes on 2 cores
LOG_TAIL_LINES = 30
GO_INSTALL_HINT = "install it from https://go.dev/dl/ or your package manager"
# Since Go 1.21 the go command fetches the toolchain a module asks for (GOTOOLCHAIN=auto).
FIRST_SELF_UPDATING_GO = (1, 21)


class BuildError(ToolchainError):
    """A build command failed; the message has the command, exit code, log tail and log path."""


def go_binary() -> str:
    found = shutil.which("go")
    if not found:
        raise ToolchainError(f"the module and source routes need Go (1.24 or newer) on PATH: {GO_INSTALL_HINT}, "
                             "or use --route release")
    return found


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text)[:3])


def installed_go() -> str | None:
    """The Go on PATH as "1.26.8", or None when there is none (or it does not answer)."""
    found = shutil.which("go")
    if not found:
        return None
    try:
        out = run([found, "env", "GOVERSION"], timeout=30).stdout.strip()
    except CommandError:
        return None
    match = re.match(r"go(\d+\.\d+(?:\.\d+)?)", out)
    return match.group(1) if match else None


def go_requirement(tool: Tool, found: str | None) -> tuple[bool, str]:
    """(ok, explanation) for building `tool` by its module route with the Go found on PATH.

    Older Go from 1.21 on is enough when GOTOOLCHAIN lets it fetch the version the module needs. A
    tool that pins its Go (`go_toolchain`) is built with exactly that release, whatever Go is found:
    any Go from 1.21 fetches it (the build sets GOTOOLCHAIN itself).
    """
    if tool.go_toolchain:
        pinned = tool.go_toolchain
        if found is None:
            return False, f"{tool.name} is built with Go {pinned} exactly: needs a Go from 1.21 on PATH, none found"
        if found == pinned:
            return True, f"{tool.name} is built with Go {pinned} exactly: found {found}"
        if version_tuple(found)[:2] >= FIRST_SELF_UPDATING_GO:
            return True, (f"{tool.name} is built with Go {pinned} exactly: found {found}, which fetches go{pinned} "
                          f"from the module proxy (GOTOOLCHAIN=go{pinned})")
        return False, f"{tool.name} is built with Go {pinned} exactly: found {found}, too old to fetch it (needs 1.21+)"
    assert tool.module is not None
    need = tool.module.go
    if found is None:
        return False, f"{tool.name} is built from its Go module: needs Go {need} or newer, none on PATH"
    if version_tuple(found) >= version_tuple(need):
        return True, f"{tool.name} is built from its Go module: needs Go {need} or newer, found {found}"
    toolchain = os.environ.get("GOTOOLCHAIN", "auto")
    if version_tuple(found)[:2] >= FIRST_SELF_UPDATING_GO and toolchain != "local":
        return True, (f"{tool.name} is built from its Go module: needs Go {need}; found {found}, which fetches "
                      f"go{need} from the module proxy (GOTOOLCHAIN={toolchain})")
    return False, f"{tool.name} is built from its Go module: needs Go {need} or newer, found {found}"


def go_needs(tools: Sequence[Tool]) -> list[tuple[Tool, bool, str]]:
    """For each tool that publishes no binaries but has a module route: can the Go here build it?

    What `kfstack doctor` reports before any install is tried.
    """
    wanted = [t for t in tools if t.release is None and t.module is not None]
    found = installed_go() if wanted else None
    return [(t, *go_requirement(t, found)) for t in wanted]


def check_go_for(tool: Tool) -> str:
    """The go binary to build `tool` with; raises, before anything runs, when it is missing or too old."""
    go = go_binary()
    if tool.module is None and not tool.go_toolchain:
        return go
    ok, why = go_requirement(tool, installed_go())
    if not ok:
        raise ToolchainError(f"{why}: {GO_INSTALL_HINT}")
    return go


def ldflags(tool: Tool) -> str:
    """Stripped binaries (the provider is 469 MB unstripped) with the tool's version variables."""
    parts = ["-s", "-w"]
    for var in tool.link_vars:
        parts += ["-X", tool.expand(var)]
    return " ".join(parts)


def go_env(gonosumdb: Sequence[str] = (), gobin: Path | None = None, *, static: bool = False,
           cgo: bool = False, toolchain: str = "") -> dict[str, str]:
    """Variables every Go command of an install gets (merged into os.environ by `run`).

    `toolchain` (a tool's `go_toolchain`) pins the Go release: GOTOOLCHAIN=go<version> wins over
    the user's setting (even `local`), so every route and machine builds the same Go's binary.
    """
    env = {"GOFLAGS": "-mod=mod -buildvcs=false"}
    if toolchain:
        env["GOTOOLCHAIN"] = f"go{toolchain}"
    if static:
        env["CGO_ENABLED"] = "0"
    elif cgo:
        env["CGO_ENABLED"] = "1"
    skip = [p for p in os.environ.get("GONOSUMDB", "").split(",") if p] + list(gonosumdb)
    if skip:
        env["GONOSUMDB"] = ",".join(dict.fromkeys(skip))
    if gobin is not None:
        env["GOBIN"] = str(gobin)
    return env


def wrapper_gomod(tool: Tool, route: ModuleRoute) -> str:
    """go.mod of a module that exists only to build `route.packages` with the replaces they need.

    A require naming {commit} is left out here: `go get module@commit` adds it with the pseudo-version.
    """
    lines = [f"module kfstack.local/{tool.name}", "", f"go {route.go}", "", "require ("]
    lines += [f"\t{tool.expand(req)}" for req in route.require if "{commit}" not in req]
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
        """Run one command, appending its output to the log and reporting progress while it runs."""
        extras = " ".join(f"{k}={v}" for k, v in sorted(env.items()))
        self._append(f"\n$ cd {cwd} && {extras} {' '.join(args)}\n")
        offset = self.path.stat().st_size
        progress = Progress(label, self.say, stream=terminal())
        proc = spawn(args, env=env, log=self.path, cwd=cwd)
        lines = 0
        last = ""

        def finished() -> tuple[bool, int | None]:
            nonlocal offset, lines, last
            try:
                return True, proc.wait(timeout=progress.interval)
            except subprocess.TimeoutExpired:
                with open(self.path, "rb") as handle:
                    handle.seek(offset)
                    data = handle.read()
                offset += len(data)
                fresh = data.decode("utf-8", errors="replace")
                new_lines = [line for line in fresh.splitlines() if line.strip()]
                lines += len(new_lines)
                last = new_lines[-1].strip() if new_lines else last
                progress.update(f"{lines} lines of output" + (f", last: {last}" if last else ""), force=True)
                return False, None

        try:
            code = wait_until(finished, timeout=timeout, interval=0, what=label)
        except WaitTimeout:
            stop_process(proc)
            self._append(f"\n# failed: timed out after {timeout:.0f}s\n")
            raise BuildError(self._failure(args, cwd, None)) from None
        finally:
            progress.done()
        if code != 0:
            self._append(f"\n# failed: {code}\n")
            raise BuildError(self._failure(args, cwd, code))
        self.say(f"  {label} ({progress.elapsed()})")

    def _failure(self, args: Sequence[str], cwd: Path, returncode: int | None) -> str:
        tail = self.path.read_text().splitlines()[-LOG_TAIL_LINES:]
        code = f"exit code {returncode}" if returncode is not None else "timed out"
        return (f"building {self.tool.name} {self.tool.version} failed: {' '.join(args)} ({code}, in {cwd})\n"
                f"--- last {len(tail)} lines of the log ---\n" + "\n".join(tail) +
                f"\n--- full log: {self.path}")


def tag_commit(tool: Tool, route: ModuleRoute, say: Callable[[str], None] = print) -> str:
    """The commit of tag {version} in `route.tag_repo`: recorded, pinned in the lock, or looked up once.

    The lookup (`git ls-remote`) is trusted on first use and pinned, like a release without checksums;
    what the go command then downloads for that commit is verified by the Go checksum database.
    """
    if route.commit:
        return route.commit
    key = f"{route.tag_repo} {tool.version}"
    pin = lock.get("commits", key)
    if pin is not None:
        return pin.value
    git = shutil.which("git")
    if not git:
        raise ToolchainError(f"{tool.name}: finding the commit of tag {tool.version} needs git on PATH (or record "
                             f"it as tools.{tool.name}.module.commit in infra/versions.toml)")
    refs = [f"refs/tags/{tool.version}", f"refs/tags/{tool.version}^{{}}"]
    try:
        out = run([git, "ls-remote", route.tag_repo, *refs], timeout=60, env={"GIT_TERMINAL_PROMPT": "0"}).stdout
    except CommandError as exc:
        raise ToolchainError(f"{tool.name}: git ls-remote {route.tag_repo} failed, so the commit of tag "
                             f"{tool.version} is unknown:\n{exc}") from None
    found = {ref.strip(): sha for sha, ref in (line.split("\t", 1) for line in out.splitlines() if "\t" in line)}
    commit = found.get(refs[1]) or found.get(refs[0])  # an annotated tag's ^{} line names the commit
    if not commit or not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise ToolchainError(f"{tool.name}: {route.tag_repo} has no tag {tool.version}")
    lock.record("commits", key, commit, verified_by=f"git ls-remote {route.tag_repo}", tool=tool.name)
    say(f"  tag {tool.version} of {route.tag_repo} is commit {commit} (pinned in {lock.lock_path()})")
    return commit


def tag_reachable(tool: Tool, route: ModuleRoute, timeout: float = 20.0) -> bool:
    """Whether git can list the tag's repository now (through whatever insteadOf, proxy or mirror
    the user's git configuration sets, which an HTTP probe of the URL would not see)."""
    git = shutil.which("git")
    if not git:
        return False
    try:
        run([git, "ls-remote", "--exit-code", route.tag_repo, f"refs/tags/{tool.version}"], timeout=timeout,
            env={"GIT_TERMINAL_PROMPT": "0"})
    except CommandError:
        return False
    return True


def build_module(tool: Tool, bin_dir: Path, work: Path, log: BuildLog) -> None:
    """`go install pkg@version`, or `go build` in a generated wrapper module."""
    route = tool.module
    if route is None:
        raise ToolchainError(f"{tool.name} has no module route")
    go = check_go_for(tool)
    flags = ldflags(tool)
    tags = ["-tags", ",".join(route.tags)] if route.tags else []
    if not route.uses_wrapper:
        targets = [f"{pkg}@{tool.version}" for pkg in route.packages.values()]
        work.mkdir(parents=True, exist_ok=True)
        log.run([go, "install", "-v", *tags, "-ldflags", flags, *targets], cwd=work,
                env=go_env(route.gonosumdb, gobin=bin_dir, static=route.static, cgo=route.cgo,
                           toolchain=tool.go_toolchain),
                label=f"go install {' '.join(targets)}")
        for binary, pkg in route.packages.items():
            produced = bin_dir / installed_name(pkg)
            if produced.name != binary and produced.exists():
                produced.rename(bin_dir / binary)
        return
    commit = tag_commit(tool, route, log.say) if route.needs_commit else ""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "go.mod").write_text(wrapper_gomod(tool, route))
    env = go_env(route.gonosumdb, static=route.static, cgo=route.cgo, toolchain=tool.go_toolchain)
    requires = [tool.expand(req, commit=commit).replace(" ", "@") for req in route.require]
    log.run([go, "get", *requires], cwd=work, env=env, label=f"go get {' '.join(requires)}")
    if route.symlinks or route.patches:
        restore_symlinks(go, route, requires[0].split("@")[0], work, env, log)
    for binary, pkg in route.packages.items():
        log.run([go, "build", "-v", *tags, "-ldflags", flags, "-o", str(bin_dir / binary), pkg], cwd=work,
                env=env, label=f"go build {binary}")


def restore_symlinks(go: str, route: ModuleRoute, module: str, work: Path, env: Mapping[str, str],
                     log: BuildLog) -> None:
    """Build against a copy of `module` with the files its zip left out (symlinks upstream) put back."""
    try:
        found = run([go, "list", "-m", "-f", "{{.Dir}}", module], cwd=work, env=env, timeout=120).stdout.strip()
    except CommandError as exc:
        raise ToolchainError(f"cannot find {module} in the module cache: {exc}") from None
    copy = work / "module-with-links"
    shutil.copytree(found, copy)
    for path in [copy, *copy.rglob("*")]:  # the module cache is read-only; the copy must not be
        path.chmod(path.stat().st_mode | 0o200)
    for link, target in route.symlinks.items():
        if not (copy / target).is_file():
            raise ToolchainError(f"{module}: {target} (what {link} points to upstream) is not in the module")
        shutil.copyfile(copy / target, copy / link)
    for patch in route.patches:
        try:
            # No fuzz: a patch that no longer fits upstream's lines exactly must be looked at again.
            run(["patch", "-p1", "--forward", "--batch", "--fuzz=0", "-i", str(REPO_ROOT / patch)], cwd=copy,
                timeout=60)
        except CommandError as exc:
            raise ToolchainError(f"{module}: {patch} does not apply:\n{(exc.stdout + exc.stderr)[-3000:]}") from None
    log.run([go, "mod", "edit", f"-replace={module}=./{copy.name}"], cwd=work, env=env,
            label=f"go mod edit: {module} with {len(route.symlinks)} restored link(s), "
                  f"{len(route.patches)} patch(es)", timeout=60)


def source_tree(tool: Tool, sources: Path | None) -> Path:
    """The tool's directory in the sources folder, or an error saying how to provide it."""
    route = tool.source
    if route is None:
        raise ToolchainError(f"{tool.name} has no source route")
    if sources is None:
        raise ToolchainError(f"{tool.name}: the source route builds from a local source tree, and none was given: "
                             f"pass --sources DIR or set KFSTACK_TOOLCHAIN_SOURCES=DIR, where DIR holds "
                             f"{tool.expand(route.dir)}/")
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
    go = check_go_for(tool)
    shutil.rmtree(work, ignore_errors=True)
    work.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(tree, work, symlinks=True)
    for path in [work, *work.rglob("*")]:  # source trees may be read-only; the copy must not be
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)
    module_dir = work / route.module_dir
    env = go_env(route.gonosumdb, static=route.static, cgo=route.cgo, toolchain=tool.go_toolchain)
    edits = [tool.expand(arg) for arg in route.mod_edit_args()]
    if edits:
        log.run([go, "mod", "edit", *edits], cwd=module_dir, env=env, label="go mod edit", timeout=60)
    if route.generate is not None:
        gen = route.generate
        gen_env = {**env, **{k: tool.expand(v) for k, v in gen.env.items()}}
        log.run([go, *gen.args], cwd=module_dir / gen.dir, env=gen_env, label=f"go {' '.join(gen.args)}")
    flags = ldflags(tool)
    tags = ["-tags", ",".join(route.tags)] if route.tags else []
    for binary, pkg in route.packages.items():
        log.run([go, "build", "-v", *tags, "-ldflags", flags, "-o", str(bin_dir / binary), pkg], cwd=module_dir,
                env=env, label=f"go build {binary}")
    for script in route.scripts:
        shutil.copyfile(module_dir / script, bin_dir / script)
        (bin_dir / script).chmod(0o755)
