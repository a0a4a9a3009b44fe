"""When upstream's Deployments were all available, seen by a watch rather than by `kubectl wait`.

The bench's yardstick is the moment upstream's single pass has every Deployment available. Timing
the `kubectl wait` that follows the pass counts kubectl's own work as well: it checks the
Deployments one after another, 48 of them here, and on a 2-core machine it returned 3 to 8 s after
the last one had become available. A watch started with the pass (`kubectl get deployments
--watch`, one line per change) stamps each change as it arrives.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

# One line per Deployment change: namespace, name, the Available condition's status (or <none>).
COLUMNS = ('custom-columns=NS:.metadata.namespace,NAME:.metadata.name,'
           'AVAILABLE:.status.conditions[?(@.type=="Available")].status')


def expected_deployments(objects: Iterable[dict[str, Any]]) -> set[str]:
    """The rendered Deployments as namespace/name."""
    return {f"{o['metadata'].get('namespace', 'default')}/{o['metadata']['name']}"
            for o in objects if o["kind"] == "Deployment"}


class Availability:
    """Which Deployments are available now, from the watch's lines in the order they came."""

    def __init__(self, expected: set[str]) -> None:
        self.expected = expected
        self.available: set[str] = set()

    def update(self, line: str) -> bool:
        """Take one line; whether every expected Deployment is available after it (one that drops
        back to unavailable counts again only once it is available again)."""
        fields = line.split()
        if len(fields) >= 3:
            key = f"{fields[0]}/{fields[1]}"
            if fields[2] == "True":
                self.available.add(key)
            else:
                self.available.discard(key)
        return self.expected <= self.available


def all_available_at(lines: Iterable[tuple[float, str]], expected: set[str]) -> float | None:
    """The first stamp at which every expected Deployment was available at once; None if never."""
    state = Availability(expected)
    return next((stamp for stamp, line in lines if state.update(line)), None)


class AvailabilityWatch:
    """`kubectl get deployments -A --watch`, each line stamped in seconds since `t0` as it arrives."""

    def __init__(self, kubectl: Sequence[str], expected: set[str], t0: float) -> None:
        self.expected = expected
        self.t0 = t0
        self.lines: list[tuple[float, str]] = []
        self._proc = subprocess.Popen([*kubectl, "get", "deployments", "--all-namespaces", "--watch",
                                       "--no-headers", "-o", COLUMNS],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        state = Availability(self.expected)
        for line in self._proc.stdout:
            self.lines.append((round(time.monotonic() - self.t0, 1), line))
            if state.update(line):
                break
        self._done.set()

    def wait(self, timeout: float) -> float | None:
        """Seconds since `t0` when every expected Deployment was first available at once (None: not
        seen within `timeout`, or the watch ended)."""
        self._done.wait(timeout)
        return all_available_at(self.lines, self.expected)

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
