"""CPU time spent during a measured span, for the whole machine and by who spent it.

A ratio of wall times says which method finished first, not why. On a small machine both methods
are mostly waiting for the same API server, and when every CPU is busy, no schedule of the same
work ends sooner than its CPU seconds divided by the CPUs: that floor, printed beside each ratio,
tells a goal that better ordering can still reach from one that needs less work.

The machine's total comes from /proc/stat (every process, exact). The split by process is sampled
from /proc/<pid>/stat every `interval` seconds: a process that exits between two samples loses
what it spent since the last one, so the groups add up to a little less than the total.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
SAMPLE_INTERVAL_S = 0.5

# Who spent the CPU, by the kernel's name for a process (its first 15 characters) ...
GROUP_BY_NAME = {
    "kube-apiserver": "API server",
    "etcd": "etcd",
    "kube-controller": "cluster controllers",  # kube-controller-manager
    "kube-scheduler": "cluster controllers",
    "kwok": "cluster controllers",
    "kwok-controller": "cluster controllers",
    "pulumi": "Pulumi CLI and engine",
    "pulumi-resource": "Kubernetes provider",  # pulumi-resource-kubernetes
    "pulumi-language": "Pulumi CLI and engine",  # the Python language host (Go)
    "kubectl": "kubectl",
}
# ... and, for Python processes, by what they run.
PYTHON_GROUPS = (("pulumi-language-python-exec", "the Pulumi program"),
                 ("pulumi.dynamic", "dynamic providers"))
OTHER = "other"


def process_group(name: str, cmdline: list[str]) -> str:
    """The group a process's CPU is counted in: `name` is /proc/<pid>/stat's, `cmdline` its argv."""
    if name.startswith("python"):
        for marker, group in PYTHON_GROUPS:
            if any(marker in arg for arg in cmdline):
                return group
    return GROUP_BY_NAME.get(name, OTHER)


def machine_busy_s() -> float:
    """CPU seconds the machine has spent on anything but idling and waiting for I/O since boot."""
    fields = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _processes() -> Iterator[tuple[int, str, float]]:
    """(pid, name, CPU seconds spent so far) of every process that can be read now."""
    hz = os.sysconf("SC_CLK_TCK")
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone since the listing
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2:].split()
        yield int(entry.name), name, (int(rest[11]) + int(rest[12])) / hz  # utime + stime


def _cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


@dataclass
class Snapshot:
    """Cumulative figures at one moment (time.monotonic()): the machine's busy seconds and each
    group's seconds since the meter started."""

    at: float
    machine: float
    groups: dict[str, float]


@dataclass
class Usage:
    """CPU seconds spent between two moments."""

    seconds: float  # the whole machine
    wall: float
    groups: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"cpu-seconds": round(self.seconds, 1), "wall-seconds": round(self.wall, 1),
                "by-group": {k: round(v, 1) for k, v in sorted(self.groups.items(), key=lambda kv: -kv[1])}}


class CpuMeter:
    """Samples the machine's CPU use in a background thread from `start()` to `stop()`."""

    def __init__(self, interval: float = SAMPLE_INTERVAL_S) -> None:
        self.interval = interval
        self.snapshots: list[Snapshot] = []
        self._last: dict[int, float] = {}  # pid -> seconds at the last sample
        self._group: dict[int, str] = {}
        self._spent: dict[str, float] = defaultdict(float)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self, first: bool) -> None:
        for pid, name, spent in _processes():
            if pid not in self._group or spent < self._last.get(pid, 0.0):  # new, or a reused pid
                self._group[pid] = process_group(name, _cmdline(pid))
                # Seen at the start: only what it spends from now counts. Started since: all of it.
                self._last[pid] = spent if first else 0.0
            self._spent[self._group[pid]] += spent - self._last[pid]
            self._last[pid] = spent
        self.snapshots.append(Snapshot(time.monotonic(), machine_busy_s(), dict(self._spent)))

    def start(self) -> CpuMeter:
        self._sample(first=True)

        def loop() -> None:
            while not self._stop.wait(self.interval):
                self._sample(first=False)

        self._thread = threading.Thread(target=loop, name="cpu-meter", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample(first=False)

    def between(self, start: float, end: float) -> Usage:
        """Usage from `start` to `end` (time.monotonic()). Asked right after `end`, it first waits
        for the next sample (at most an interval or two): read from the samples so far, the span
        would end at the last one, up to an interval early."""
        deadline = time.monotonic() + 4 * self.interval
        while self.snapshots[-1].at < end and self._thread is not None and self._thread.is_alive() \
                and time.monotonic() < deadline:
            time.sleep(min(0.05, self.interval))
        return usage_between(self.snapshots, start, end)


def _at(snapshots: list[Snapshot], t: float) -> tuple[float, dict[str, float]]:
    """The machine's and each group's cumulative seconds at `t`, interpolated between the two
    snapshots around it (the first or last one outside their span)."""
    if t <= snapshots[0].at:
        return snapshots[0].machine, snapshots[0].groups
    for before, after in itertools.pairwise(snapshots):
        if t <= after.at:
            f = (t - before.at) / (after.at - before.at) if after.at > before.at else 1.0
            groups = {g: before.groups.get(g, 0.0) + f * (after.groups.get(g, 0.0) - before.groups.get(g, 0.0))
                      for g in after.groups}
            return before.machine + f * (after.machine - before.machine), groups
    return snapshots[-1].machine, snapshots[-1].groups


def usage_between(snapshots: list[Snapshot], start: float, end: float) -> Usage:
    """What was spent from `start` to `end` (time.monotonic()), within the snapshots' span."""
    if not snapshots:
        return Usage(0.0, 0.0)
    start, end = max(start, snapshots[0].at), min(end, snapshots[-1].at)
    (m0, g0), (m1, g1) = _at(snapshots, start), _at(snapshots, end)
    groups = {g: s - g0.get(g, 0.0) for g, s in g1.items()}
    return Usage(max(0.0, m1 - m0), max(0.0, end - start), {g: s for g, s in groups.items() if s > 0.05})
