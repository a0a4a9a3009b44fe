"""The doctor's checks: what `kfstack doctor` prints and a conformance run records, each failure
with its fix; and the one-line description of this machine that benchmarks and runs carry.

A library, not a command: the command (infra/commands/doctor.py) and the conformance run both call
`run_checks`, so neither imports the other's command module.
"""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Callable
from pathlib import Path

from infra.paths import cache_root
from infra.preflight import Check

# What Kubeflow's own docs ask of a cluster host; kind runs every node on this machine.
MIN_CPUS = 4
MIN_MEMORY_GIB = 12
MIN_DISK_GIB = 50
MIN_INOTIFY_WATCHES = 1_280_000
MIN_INOTIFY_INSTANCES = 2_280


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def check_cpu() -> Check:
    n = os.cpu_count() or 0
    return Check("cpu", n >= MIN_CPUS, f"{n} CPUs", f"Kubeflow needs {MIN_CPUS}+ CPUs; use a bigger machine "
                 "or the `sim` stack", required=False)


def _memory_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def check_memory() -> Check:
    gib = _memory_kib() / 2**20
    return Check("memory", gib >= MIN_MEMORY_GIB, f"{gib:.1f} GiB", f"Kubeflow needs {MIN_MEMORY_GIB}+ GiB",
                 required=False)


def check_disk() -> Check:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free / 2**30
    return Check("disk", free >= MIN_DISK_GIB, f"{free:.0f} GiB free under {root}",
                 f"free {MIN_DISK_GIB} GiB (images and volumes) or set KFSTACK_CACHE elsewhere", required=False)


def check_inotify() -> list[Check]:
    watches = _read_int("/proc/sys/fs/inotify/max_user_watches")
    instances = _read_int("/proc/sys/fs/inotify/max_user_instances")
    return [
        Check("fs.inotify.max_user_watches", (watches or 0) >= MIN_INOTIFY_WATCHES, str(watches),
              f"sudo sysctl fs.inotify.max_user_watches={MIN_INOTIFY_WATCHES}", required=False),
        Check("fs.inotify.max_user_instances", (instances or 0) >= MIN_INOTIFY_INSTANCES, str(instances),
              f"sudo sysctl fs.inotify.max_user_instances={MIN_INOTIFY_INSTANCES}", required=False),
    ]


def check_container_runtime() -> list[Check]:
    """The runtime kind needs, with this host's quirks (infra/runtime/checks.py)."""
    from infra.runtime.checks import runtime_checks

    return runtime_checks()


def check_tools() -> list[Check]:
    try:
        from infra.toolchain import tool_status
    except ImportError:
        return [Check("toolchain", False, "toolchain module missing", "reinstall the project")]
    checks = []
    for status in tool_status():
        detail = (f"{status.installed} via {status.route} at {status.path}" if status.ok
                  else f"{status.installed or 'not installed'} (wants {status.wanted})")
        checks.append(Check(f"tool {status.name}", status.ok, detail, f"kfstack tools install {status.name}",
                            required=status.default))
    from infra.toolchain.gobuild import GO_INSTALL_HINT, go_needs
    from infra.toolchain.model import load_toolchain

    installed = {s.name for s in tool_status() if s.ok}
    for tool, ok, detail in go_needs(load_toolchain().defaults()):
        checks.append(Check(f"go for {tool.name}", ok, detail, f"Go {tool.module.go if tool.module else ''} or "
                            f"newer: {GO_INSTALL_HINT}", required=tool.name not in installed))
    return checks


CHECKS: list[Callable[[], Check | list[Check]]] = [
    check_tools, check_container_runtime, check_cpu, check_memory, check_disk, check_inotify]


def run_checks() -> list[Check]:
    results: list[Check] = []
    for check in CHECKS:
        out = check()
        results.extend(out if isinstance(out, list) else [out])
    return results


def machine() -> str:
    """This machine in one line: architecture, CPUs, memory, Python and platform."""
    mem = _memory_kib() // 2**20
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {mem} GiB, {platform.python_implementation()} " \
           f"{platform.python_version()}, {platform.platform()}"
