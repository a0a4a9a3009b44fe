"""The Docker daemon: use the one that answers; otherwise start Debian's, and record that we did.

A daemon the user runs is never restarted, reconfigured or stopped. A daemon the project starts
gets its own config file (the user's /etc/docker/daemon.json is read, never written), runs
detached from the shell that started it, and is recorded in a state file with its pid, so
`stop` stops exactly that process and nothing else. On hosts without CAP_SYS_RESOURCE that
config registers the project's runc shim as the default runtime.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from infra import paths
from infra.runtime import cgroups, host, shim
from smoke_tests.process import pid_alive, spawn, stop_pid
from smoke_tests.run import CommandError, run
from smoke_tests.wait import WaitTimeout, wait_until

Say = Callable[[str], None]
START_TIMEOUT_S = 90.0
USER_DAEMON_CONFIG = Path("/etc/docker/daemon.json")


class RuntimeSetupError(RuntimeError):
    """The runtime could not be prepared; the message says why and what to do."""


def runtime_dir() -> Path:
    path = paths.cache_root() / "runtime"
    path.mkdir(parents=True, exist_ok=True)
    return path


def state_file() -> Path:
    return runtime_dir() / "dockerd.json"


@dataclass(frozen=True)
class DaemonRecord:
    """What the project wrote down when it started a daemon: enough to stop only that one."""

    pid: int
    binary: str
    config_file: str
    log: str
    started_at: str
    default_runtime: str


def read_record() -> DaemonRecord | None:
    try:
        return DaemonRecord(**json.loads(state_file().read_text()))
    except (OSError, ValueError, TypeError):
        return None


def docker_cli() -> str | None:
    return shutil.which("docker")


def dockerd_binary() -> str | None:
    found = shutil.which("dockerd")
    if found:
        return found
    return "/usr/sbin/dockerd" if Path("/usr/sbin/dockerd").exists() else None


def server_info() -> dict[str, object] | None:
    """`docker info` of the daemon that answers, or None when none does."""
    cli = docker_cli()
    if cli is None:
        return None
    try:
        out = run([cli, "info", "--format", "{{json .}}"], timeout=20).stdout
        info = json.loads(out)
    except (CommandError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("ServerVersion") else None


def owned_pid() -> int | None:
    """The pid of a running daemon this project started, or None."""
    record = read_record()
    if record is None or not pid_alive(record.pid):
        return None
    try:
        exe = Path(f"/proc/{record.pid}/exe").resolve()
    except OSError:
        return None
    return record.pid if exe.name == Path(record.binary).name else None  # the pid was not reused


def daemon_config(shim_path: Path | None, user_config: Path = USER_DAEMON_CONFIG) -> dict[str, object]:
    """The config of a daemon the project starts: the user's settings, plus the shim when needed."""
    config: dict[str, object] = {}
    if user_config.is_file():
        try:
            loaded = json.loads(user_config.read_text() or "{}")
        except ValueError as exc:
            raise RuntimeSetupError(f"{user_config} is not valid JSON ({exc}); fix it or move it away") from None
        if isinstance(loaded, dict):
            config.update(loaded)
    if shim_path is not None:
        runtimes = dict(config.get("runtimes") or {})  # type: ignore[call-overload]
        runtimes[shim.RUNTIME_NAME] = {"path": str(shim_path)}
        config["runtimes"] = runtimes
        config["default-runtime"] = shim.RUNTIME_NAME
    return config


@dataclass(frozen=True)
class RuntimeState:
    """What `ensure_running` found or did."""

    answering: bool
    owned: bool  # the project started it (and may stop it)
    started: bool  # started by this call
    version: str = ""
    default_runtime: str = ""
    detail: str = ""


def _describe(info: dict[str, object], owned: bool, started: bool) -> RuntimeState:
    return RuntimeState(True, owned, started, str(info.get("ServerVersion", "")),
                        str(info.get("DefaultRuntime", "")))


def ensure_running(say: Say = print) -> RuntimeState:
    """A daemon that answers: the one already running, or one the project starts now."""
    info = server_info()
    if info is not None:
        state = _describe(info, owned_pid() is not None, False)
        whose = "started by kfstack" if state.owned else "not started by kfstack: left as it is"
        say(f"docker {state.version}: running ({whose}, default runtime {state.default_runtime})")
        if may_prepare_cgroups():
            prepare_cgroups(say)
        return state
    if docker_cli() is None or dockerd_binary() is None:
        return RuntimeState(False, False, False, detail="docker is not installed")
    return start_daemon(say)


def prepare_cgroups(say: Say) -> None:
    """What Debian's init script does before its daemon: mount the v1 controllers the kernel enables
    and the host left unmounted (infra/runtime/cgroups.py). A failure is reported, not fatal: the
    daemon itself runs without them, and a cluster create refuses with the commands."""
    try:
        cgroups.complete_mounts(cgroups.host_gaps(), say)
    except cgroups.CgroupMountError as exc:
        say(f"warning: {exc}")


def may_prepare_cgroups() -> bool:
    """Whether the project may complete the host's cgroup mounts: as root, for a daemon it started."""
    return host.is_root() and owned_pid() is not None


def start_daemon(say: Say = print) -> RuntimeState:
    """Start dockerd detached, with the project's config; record it; wait until it answers."""
    binary = dockerd_binary()
    assert binary is not None
    facts = host.host_facts()
    if not facts.root:
        raise RuntimeSetupError("starting the Docker daemon needs root: run `sudo kfstack runtime start`, "
                                "or start Docker yourself (systemctl start docker)")
    missing = host.missing_daemon_capabilities()
    if missing:  # it would exit at once; say why instead of quoting its log
        raise RuntimeSetupError(f"dockerd cannot run here: this process lacks {', '.join(missing)} (an "
                                "unprivileged container?). Use a daemon outside it (DOCKER_HOST), or run "
                                "the container with --privileged")
    shim_path = shim.build_shim(say) if facts.lacks_sys_resource else None
    prepare_cgroups(say)
    config_file = runtime_dir() / "daemon.json"
    config_file.write_text(json.dumps(daemon_config(shim_path), indent=2, sort_keys=True) + "\n")
    log = runtime_dir() / "dockerd.log"
    start = time.monotonic()
    proc = spawn([binary, "--config-file", str(config_file), "--pidfile", str(runtime_dir() / "dockerd.pid")],
                 log=log, detach=True)
    record = DaemonRecord(pid=proc.pid, binary=binary, config_file=str(config_file), log=str(log),
                          started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                          default_runtime=shim.RUNTIME_NAME if shim_path else "runc")
    state_file().write_text(json.dumps(asdict(record), indent=2) + "\n")

    def answering() -> tuple[bool, str]:
        if proc.poll() is not None:
            raise RuntimeSetupError(f"dockerd exited with code {proc.returncode}; see {log}:\n"
                                    + "\n".join(log.read_text().splitlines()[-15:]))
        return server_info() is not None, "no answer yet"

    try:
        wait_until(answering, timeout=START_TIMEOUT_S, interval=0.5, what="the Docker daemon to answer")
    except WaitTimeout as exc:
        stop_pid(proc.pid)
        state_file().unlink(missing_ok=True)
        raise RuntimeSetupError(f"{exc}; see {log}") from None
    info = server_info() or {}
    state = _describe(info, True, True)
    say(f"docker {state.version}: started by kfstack (pid {proc.pid}, default runtime {state.default_runtime}, "
        f"{time.monotonic() - start:.1f}s; config {config_file}, log {log})")
    return state


def running_containers() -> list[str]:
    cli = docker_cli()
    if cli is None:
        return []
    try:
        return run([cli, "ps", "--format", "{{.Names}}"], timeout=30).stdout.split()
    except CommandError:
        return []


def stop_daemon(say: Say = print, *, force: bool = False) -> bool:
    """Stop the daemon the project started (never another); refuses while containers run."""
    pid = owned_pid()
    if pid is None:
        say("docker: no daemon started by kfstack is running; nothing to stop")
        state_file().unlink(missing_ok=True)
        return False
    busy = running_containers()
    if busy and not force:
        raise RuntimeSetupError(f"the Docker daemon kfstack started (pid {pid}) still runs containers: "
                                f"{', '.join(busy)}; delete them first (kind delete cluster --name ...) or "
                                "pass --force")
    start = time.monotonic()
    stop_pid(pid, grace=60)
    state_file().unlink(missing_ok=True)
    say(f"docker: stopped the daemon kfstack started (pid {pid}, {time.monotonic() - start:.1f}s)")
    return True
