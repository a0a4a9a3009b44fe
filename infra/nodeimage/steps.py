"""Cached build steps: each keyed by a digest of its inputs, printed with its time.

A step whose recorded key matches is skipped ("cached"), so a second build prints every step and
builds nothing; a changed pin changes the keys of the steps that depend on it, and only those run.
Timings of the last run of each step are kept in `<cache>/nodeimage/steps.json` for benchmarks.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from infra import paths

Say = Callable[[str], None]


def nodeimage_dir() -> Path:
    path = paths.cache_root() / "nodeimage"
    path.mkdir(parents=True, exist_ok=True)
    return path


def digest(inputs: Mapping[str, object]) -> str:
    """A short, stable digest of a step's inputs (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


@dataclass
class StepLog:
    """What one build did: each step's name, outcome and seconds, for the summary line."""

    say: Say = print
    entries: list[tuple[str, str, float]] = field(default_factory=list)

    def run(self, name: str, key: str, done: Callable[[], bool], build: Callable[[], None]) -> str:
        """Run `build` unless `done()` says the output for `key` exists; return "cached" or "built"."""
        start = time.monotonic()
        if done():
            seconds = time.monotonic() - start
            self.entries.append((name, "cached", seconds))
            self.say(f"  {name}: cached ({key}, {seconds:.1f}s)")
            return "cached"
        self.say(f"  {name}: building ({key}) ...")
        build()
        seconds = time.monotonic() - start
        self.entries.append((name, "built", seconds))
        self.say(f"  {name}: built in {seconds:.1f}s")
        self._record(name, key, seconds)
        return "built"

    def _record(self, name: str, key: str, seconds: float) -> None:
        path = nodeimage_dir() / "steps.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        data[name] = {"key": key, "seconds": round(seconds, 1), "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")

    def summary(self) -> str:
        built = [f"{n} {s:.0f}s" for n, o, s in self.entries if o == "built"]
        total = sum(s for _, _, s in self.entries)
        return (f"{len(built)} built, {len(self.entries) - len(built)} cached in {total:.0f}s"
                + (f"; built: {', '.join(built)}" if built else ""))
