"""Names for what a run makes and must not share: clusters, stacks, anything a test creates.

Every such name is a prefix and a random suffix drawn here, and a name is never handed out twice in
one process: two fixtures of one test session cannot meet on a name whatever order they run in
(the fixed `kfsim` of the README once met the fresh-machine test's cluster of the same name).
Between processes the suffix makes a meeting a one-in-16-million chance per pair of names.
"""

from __future__ import annotations

import re
import secrets
import threading

SUFFIX_BYTES = 3  # six hex digits: kind and kwokctl put the name in container and host names
_PREFIX = re.compile(r"[a-z][a-z0-9-]{0,30}")
_issued: set[str] = set()
_lock = threading.Lock()


def unique_name(prefix: str) -> str:
    """`<prefix>-<6 hex>`, never the same twice in this process."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"name prefix {prefix!r}: lower-case letters, digits and '-', starting with a letter, "
                         "at most 31 characters (the name goes into container and host names)")
    with _lock:
        while True:
            name = f"{prefix}-{secrets.token_hex(SUFFIX_BYTES)}"
            if name not in _issued:
                _issued.add(name)
                return name


def suffix(name: str) -> str:
    """The random part of a name from `unique_name` (to name a related object alike)."""
    return name.rsplit("-", 1)[1]
