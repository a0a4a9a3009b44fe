"""T0: the dynamic provider process serves more than Pulumi's 4 calls at once
(infra/server_apply.py `serve_more_calls_at_once`); the engine-level effect is T2, in
tests/test_definitions.py."""

from __future__ import annotations

import importlib.machinery
import sys
import threading
import types
from concurrent.futures import ThreadPoolExecutor

import pytest

from infra.server_apply import PULUMI_DYNAMIC_PROVIDER_CALLS, serve_more_calls_at_once

CALLS = 12


def running_at_once(pool: ThreadPoolExecutor, calls: int) -> int:
    """How many of `calls` waiting calls the pool runs at the same time."""
    started = threading.Semaphore(0)
    release = threading.Event()

    def call() -> None:
        started.release()
        release.wait(10)

    futures = [pool.submit(call) for _ in range(calls)]
    running = 0
    while running < calls and started.acquire(timeout=1):
        running += 1
    release.set()
    for future in futures:
        future.result(timeout=10)
    return running


def test_in_the_dynamic_provider_process_pulumis_pool_serves_more_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    main = types.ModuleType("__main__")
    main.__spec__ = importlib.machinery.ModuleSpec("pulumi.dynamic.__main__", None)
    monkeypatch.setitem(sys.modules, "__main__", main)
    pool = ThreadPoolExecutor(max_workers=PULUMI_DYNAMIC_PROVIDER_CALLS)
    assert running_at_once(pool, CALLS) == PULUMI_DYNAMIC_PROVIDER_CALLS  # as Pulumi starts it
    other = ThreadPoolExecutor(max_workers=2)
    assert serve_more_calls_at_once(CALLS) >= 1
    assert running_at_once(pool, CALLS) == CALLS
    assert other._max_workers == 2  # only pools of Pulumi's size
    pool.shutdown()
    other.shutdown()


def test_in_any_other_process_nothing_changes() -> None:
    pool = ThreadPoolExecutor(max_workers=PULUMI_DYNAMIC_PROVIDER_CALLS)
    assert serve_more_calls_at_once(CALLS) == 0
    assert pool._max_workers == PULUMI_DYNAMIC_PROVIDER_CALLS
    pool.shutdown()
