"""Progress on long steps: a status line that rewrites itself on a terminal, a line every few seconds elsewhere.

A cold build of the Kubernetes control plane takes minutes; a silent installer looks hung, and a CI
log without timestamps cannot show where the time went. Each long step reports what it is doing
at least every `INTERVAL` seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

INTERVAL = 5.0


class Progress:
    """Reports one long step. `update(text)` is cheap: it prints only when the interval has passed."""

    def __init__(self, label: str, say: Callable[[str], None], *, interval: float | None = None,
                 stream: TextIO | None = None) -> None:
        self.label = label
        self.say = say
        self.interval = INTERVAL if interval is None else interval
        self.start = time.monotonic()
        self._last = self.start
        # A terminal gets one rewritten line; pipes and CI logs get whole lines through `say`.
        self._tty = stream if stream is not None and stream.isatty() else None
        self._width = 0

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self.start)
        return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"

    def update(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        line = f"  {self.label}: {self.elapsed()}, {text}"
        if self._tty is not None:
            padded = line[:160].ljust(self._width)
            self._width = len(line[:160])
            self._tty.write("\r" + padded)
            self._tty.flush()
        else:
            self.say(line)

    def done(self) -> None:
        """End the rewritten line so the next message starts on its own."""
        if self._tty is not None and self._width:
            self._tty.write("\r" + " " * self._width + "\r")
            self._tty.flush()


def terminal() -> TextIO | None:
    """stdout when it is a terminal (for the rewritten line), else None."""
    return sys.stdout if sys.stdout.isatty() else None
