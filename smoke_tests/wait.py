"""The one wait helper: a monotonic deadline, and a timeout message that says what was last seen.

Every wait in the suite and the local target goes through `wait_until`, so a failure always names
what it waited for, for how long, how many times it looked, and the last thing it saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

Check = Callable[[], tuple[bool, T]]


class WaitTimeout(TimeoutError):
    """A wait ran out of time (or was stopped by its failure predicate); carries the last observation."""

    def __init__(self, what: str, timeout: float, attempts: int, last: object,
                 last_error: BaseException | None, *, stopped: str = "") -> None:
        self.what = what
        self.last = last
        self.last_error = last_error
        self.attempts = attempts
        head = (f"gave up waiting for {what}: {stopped}" if stopped
                else f"timed out after {timeout:.0f}s waiting for {what}")
        error = f"; last error: {type(last_error).__name__}: {last_error}" if last_error else ""
        super().__init__(f"{head} ({attempts} attempt(s)); last observation: {last!r}{error}")


def wait_until(check: Callable[[], tuple[bool, T]], *, timeout: float, interval: float, what: str,
               fail_if: Callable[[T], str | None] | None = None,
               retry_on: tuple[type[BaseException], ...] = (OSError,)) -> T:
    """Call `check` until it returns `(True, observation)`; return that observation.

    `check` returns `(done, observation)`. Exceptions listed in `retry_on` count as "not yet" and are
    reported if the wait times out. `fail_if(observation)` may return a reason to stop early (a pod
    crash-looping will not become ready by waiting).
    """
    deadline = time.monotonic() + timeout
    attempts = 0
    last: object = None
    last_error: BaseException | None = None
    while True:
        attempts += 1
        try:
            done, observation = check()
        except retry_on as exc:
            last_error = exc
        else:
            last = observation
            last_error = None
            if done:
                return observation
            reason = fail_if(observation) if fail_if else None
            if reason:
                raise WaitTimeout(what, timeout, attempts, last, None, stopped=reason)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(what, timeout, attempts, last, last_error)
        time.sleep(min(interval, remaining))
