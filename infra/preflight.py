"""One preflight check's result: what `kfstack doctor` prints, whichever module checked it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True  # a failure makes `kfstack doctor` exit non-zero
