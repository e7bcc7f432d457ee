"""The results store: every benchmark row in one SQLite file (default ``results/infozoo.sqlite``).

A row holds the task (table, setting, method, seed, profile, params), its key (a hash of the
task), the metrics, wall time, package version, git revision and time of writing. Each row is
written in its own transaction, so an interrupted sweep loses nothing already finished and a
rerun skips the tasks whose key is present.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_DB = Path("results") / "infozoo.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key        TEXT PRIMARY KEY,
    table_name TEXT NOT NULL,
    setting    TEXT NOT NULL,
    method     TEXT NOT NULL,
    seed       INTEGER NOT NULL,
    profile    TEXT NOT NULL,
    params     TEXT NOT NULL,
    metrics    TEXT NOT NULL,
    wall_time  REAL NOT NULL,
    version    TEXT NOT NULL,
    git_rev    TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_table ON runs (table_name, profile);
"""


@dataclass(frozen=True)
class Record:
    """One stored benchmark row."""

    key: str
    table: str
    setting: str
    method: str
    seed: int
    profile: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    wall_time: float
    version: str
    git_rev: str
    created_at: str


class Store:
    """SQLite-backed results store; safe to reopen, each write is one transaction."""

    def __init__(self, path: str | Path = DEFAULT_DB) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=60)
        try:
            with con:  # commits on success, rolls back on error
                yield con
        finally:
            con.close()

    def has(self, key: str) -> bool:
        with self._connect() as con:
            return con.execute("SELECT 1 FROM runs WHERE key = ?", (key,)).fetchone() is not None

    def keys(self) -> set[str]:
        with self._connect() as con:
            return {row[0] for row in con.execute("SELECT key FROM runs")}

    def put(self, key: str, table: str, setting: str, method: str, seed: int, profile: str,
            params: dict[str, Any], metrics: dict[str, Any], wall_time: float) -> None:
        from infozoo import __version__

        row = (key, table, setting, method, int(seed), profile, json.dumps(params, sort_keys=True),
               json.dumps(metrics, sort_keys=True, default=_plain), float(wall_time), __version__,
               git_revision(), datetime.now(UTC).isoformat(timespec="seconds"))
        with self._connect() as con:
            con.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row)

    def records(self, table: str | None = None, profile: str | None = None) -> list[Record]:
        query, args = "SELECT * FROM runs WHERE 1=1", []
        if table is not None:
            query, args = query + " AND table_name = ?", [*args, table]
        if profile is not None:
            query, args = query + " AND profile = ?", [*args, profile]
        with self._connect() as con:
            rows = con.execute(query + " ORDER BY table_name, setting, method, seed", args).fetchall()
        return [Record(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), json.loads(r[7]),
                       r[8], r[9], r[10], r[11]) for r in rows]


def _plain(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


_GIT_REV: str | None = None


def git_revision() -> str:
    """The git revision of the working tree ('unknown' outside a checkout; '+dirty' if modified)."""
    global _GIT_REV
    if _GIT_REV is None:
        here = Path(__file__).resolve().parent
        try:
            rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True,
                                 text=True, timeout=10).stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            _GIT_REV = (rev + ("+dirty" if dirty else "")) if rev else "unknown"
        except (OSError, subprocess.SubprocessError):
            _GIT_REV = "unknown"
    return _GIT_REV
