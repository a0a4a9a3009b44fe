"""`pulumi up` as a user runs it: the CLI itself, timed from start to exit.

The Automation API's `Stack.up` runs the same command, then two more of its own (`pulumi stack
output` and `pulumi stack history`), each reading the whole state again: about a second on a
full release's state, which the bench used to count as part of `pulumi up`. Here the clock stops
when the CLI exits. When the bench wants the engine's events (each step's start and end), the CLI
writes them to an event log, read line by line while it runs and stamped as they arrive.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pulumi.automation import EngineEvent

from infra.automation import UP_PARALLEL, TempStack
from smoke_tests.run import CommandError

TAIL_INTERVAL_S = 0.02
UP_TIMEOUT_S = 1800.0
DEBUG_FLAGS_VARIABLE = "PULUMI_DEBUG_COMMANDS"


def up_command(stack: TempStack, *extra: str) -> list[str]:
    """The command a user types for an update without a preview or a prompt."""
    from infra.toolchain import tool_path

    return [str(tool_path("pulumi")), "up", "--yes", "--skip-preview", "--non-interactive",
            "--parallel", str(UP_PARALLEL), "--stack", stack.name, *extra]


class EventLogReader:
    """Follows an event log that the CLI appends to, handing each event to `on_event` as it comes."""

    def __init__(self, path: Path, on_event: Callable[[Any], None]) -> None:
        self.path = path
        self.on_event = on_event
        self.events = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="event-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """Read what is left once the CLI has exited, then stop."""
        self._stop.set()
        self._thread.join()

    def _follow(self) -> None:
        while not self.path.exists() and not self._stop.is_set():
            time.sleep(TAIL_INTERVAL_S)
        if not self.path.exists():
            return
        partial = ""
        with self.path.open(encoding="utf-8") as log:
            while True:
                stopping = self._stop.is_set()  # read once more after the writer has gone
                chunk = log.read()
                if chunk:
                    lines = (partial + chunk).split("\n")
                    partial = lines.pop()
                    for line in lines:
                        self._deliver(line)
                elif stopping:
                    break
                else:
                    time.sleep(TAIL_INTERVAL_S)
        self._deliver(partial)

    def _deliver(self, line: str) -> None:
        if line.strip():
            self.events += 1
            self.on_event(EngineEvent.from_json(json.loads(line)))


def timed_up(stack: TempStack, on_event: Callable[[Any], None] | None = None,
             timeout: float = UP_TIMEOUT_S) -> float:
    """Run `pulumi up` on `stack` and return its wall time in seconds; with `on_event`, the
    engine's events go to it while the command runs. A failed update raises `CommandError`."""
    env = {**os.environ, **stack.env}
    with tempfile.TemporaryDirectory(prefix="kfstack-events-") as tmp:
        extra: list[str] = []
        reader = None
        if on_event is not None:
            log = Path(tmp) / "events.jsonl"
            extra = ["--event-log", str(log)]
            env[DEBUG_FLAGS_VARIABLE] = "true"  # the CLI takes --event-log only with it (as the Automation API sets)
            reader = EventLogReader(log, on_event)
            reader.start()
        argv = up_command(stack, *extra)
        t0 = time.monotonic()
        try:
            proc = subprocess.run(argv, cwd=stack.work_dir, env=env, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        finally:
            took = time.monotonic() - t0
            if reader is not None:
                reader.finish()
    if proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stdout, proc.stderr)
    return took
