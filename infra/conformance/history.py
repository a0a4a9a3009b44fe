"""The history of conformance runs: one SQLite file, in the user cache unless a path is given.

Each run is stored whole (its JSON record) and, for queries the report makes, as rows: one per
check and one per phase of each `pulumi up`. A CI keeps the file as an artifact between nights.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from infra.conformance.record import RunRecord
from infra.paths import cache_root

ENV_HISTORY = "KFSTACK_HISTORY"
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, stack TEXT NOT NULL, release TEXT, upgrade_from TEXT,
  started TEXT NOT NULL, finished TEXT, status TEXT NOT NULL, exit_code INTEGER NOT NULL,
  failed_step TEXT, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checks (
  run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE, check_id TEXT NOT NULL,
  outcome TEXT NOT NULL, seconds REAL NOT NULL, PRIMARY KEY (run_id, check_id));
CREATE TABLE IF NOT EXISTS phases (
  run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE, up TEXT NOT NULL, phase TEXT NOT NULL,
  seconds REAL NOT NULL, PRIMARY KEY (run_id, up, phase));
CREATE INDEX IF NOT EXISTS runs_by_stack ON runs(stack, started);
"""


def default_history_path() -> Path:
    explicit = os.environ.get(ENV_HISTORY)
    return Path(explicit).expanduser() if explicit else cache_root() / "conformance" / "history.sqlite"


class History:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    @contextmanager
    def open(cls, path: Path | None = None) -> Iterator[History]:
        path = (path or default_history_path()).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.executescript(SCHEMA)
            yield cls(conn, path)
            conn.commit()
        finally:
            conn.close()

    def add(self, record: RunRecord) -> None:
        """Store a run (again, if its id is known: a re-recorded run replaces the old rows)."""
        with self.conn:
            self.conn.execute("DELETE FROM runs WHERE run_id = ?", (record.run_id,))
            self.conn.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.run_id, record.stack, record.release, record.upgrade_from, record.started,
                 record.finished, record.status, record.exit_code, record.failed_step,
                 json.dumps(asdict(record))))
            self.conn.executemany("INSERT OR REPLACE INTO checks VALUES (?, ?, ?, ?)",
                                  [(record.run_id, c.id, c.outcome, c.seconds) for c in record.checks])
            self.conn.executemany("INSERT OR REPLACE INTO phases VALUES (?, ?, ?, ?)",
                                  [(record.run_id, up, phase, sec) for up, phases in record.phases.items()
                                   for phase, sec in phases.items()])

    def runs(self, stack: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """Runs oldest first (the last `limit` of them), of one stack or all."""
        where = " WHERE stack = ?" if stack else ""
        query = f"SELECT record FROM runs{where} ORDER BY started DESC, run_id DESC"
        params: tuple[object, ...] = (stack,) if stack else ()
        if limit:
            query += " LIMIT ?"
            params += (limit,)
        rows = self.conn.execute(query, params).fetchall()
        return [RunRecord.from_dict(json.loads(r[0])) for r in reversed(rows)]

    def latest(self, stack: str) -> RunRecord | None:
        found = self.runs(stack, limit=1)
        return found[0] if found else None

    def stacks(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT stack FROM runs ORDER BY stack")]
