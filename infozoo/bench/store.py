"""The results store: every benchmark row in one SQLite file (default ``results/infozoo.sqlite``).

A row holds the task (table, setting name and content id, method, seed, profile, params), its key
(a hash of the task, with the setting identified by content: ``task_key``), the metrics, wall time,
package version, git revision and time of writing.

Guarantees:

- Opening checks everything before any work starts: a folder, a file that is not SQLite, a
  corrupt file, a database of another schema, and (for writing) a database or folder that cannot
  be written are refused with a ``StoreError`` that says what to do.
- Each row is written in its own transaction, so a sweep killed at any point (even SIGKILL) loses
  only the tasks in flight; a rerun skips the tasks whose key is present.
- A row, once written, is never replaced: a second result for the same key is dropped.
- Several processes may write one database at once (SQLite locking; each writer waits up to
  ``TIMEOUT`` seconds for the others).
- The schema version is SQLite's ``user_version``; a database of the previous version (no
  ``setting_id`` column) is upgraded in place in one transaction, its keys recomputed.
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
SCHEMA_VERSION = 2
TIMEOUT = 60.0  # seconds a writer waits for another one's lock
V1_COLUMNS = ("key", "table_name", "setting", "method", "seed", "profile", "params", "metrics", "wall_time",
              "version", "git_rev", "created_at")
COLUMNS = (*V1_COLUMNS, "setting_id")

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
    created_at TEXT NOT NULL,
    setting_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_table ON runs (table_name, profile);
"""


class StoreError(ValueError):
    """The results database cannot be used (missing, not SQLite, corrupt, other schema, read-only)."""


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
    setting_id: str = ""  # content id of the setting ('' when the task names no registered setting)


def task_key(task: dict[str, Any], setting_id: str = "") -> str:
    """The key of a task (its fields as a dict): a hash of every field, plus the setting's content id
    when it has one, so that a setting whose content changes is a new task."""
    from infozoo.core.files import content_hash

    return content_hash({**task, "setting_id": setting_id} if setting_id else task, 24)


class Store:
    """SQLite-backed results store (see the module docstring for what it guarantees).

    ``Store(path)`` opens for writing (creating the file); ``Store(path, write=False)`` only reads
    and needs an existing database.
    """

    def __init__(self, path: str | Path = DEFAULT_DB, write: bool = True) -> None:
        self.path = Path(path)
        self.write = write
        self._legacy = False  # a read-only database of schema version 1
        where = str(self.path)
        if self.path.is_dir():
            raise StoreError(f"results database {where!r} is a folder; pass a file, e.g. {where}/infozoo.sqlite")
        if self.path.exists():
            with open(self.path, "rb") as f:
                head = f.read(16)
            if head and head != b"SQLite format 3\x00":
                raise StoreError(f"{where!r} is not an SQLite database (not a results database of infozoo); "
                                 "pass another --db path")
        elif not write:
            raise StoreError(f"no results database at {where!r}; run 'infozoo bench ...' first")
        else:
            from infozoo.core.files import check_writable_dir

            check_writable_dir(self.path.parent, "results database folder")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._errors("open"):
            self._open()

    # -- opening ---------------------------------------------------------------------------------
    def _open(self) -> None:
        with self._connect() as con:
            if self.write:
                con.execute("BEGIN IMMEDIATE")  # also the writability check: it takes the write lock
            columns = [r[1] for r in con.execute("PRAGMA table_info(runs)")]
            if not columns:
                others = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                if others:
                    raise StoreError(f"{str(self.path)!r} is an SQLite database of another program (tables "
                                     f"{', '.join(others[:5])}; no 'runs'); pass another --db path")
                if self.write:
                    for statement in [*_SCHEMA.split(";"), f"PRAGMA user_version = {SCHEMA_VERSION}"]:
                        con.execute(statement)
                return
            if tuple(columns) == V1_COLUMNS:
                if self.write:
                    self._upgrade(con)
                else:
                    self._legacy = True
            elif tuple(columns) != COLUMNS:
                raise StoreError(f"{str(self.path)!r} has a 'runs' table of another schema (columns "
                                 f"{', '.join(columns)}); it is not an infozoo results database of this "
                                 "version: pass another --db path")
            if self.write:
                version = con.execute("PRAGMA user_version").fetchone()[0]
                con.execute(f"PRAGMA user_version = {version}")  # a real write, rolled back: read-only fails here
                con.execute("COMMIT")

    def _upgrade(self, con: sqlite3.Connection) -> None:
        """Schema 1 -> 2: add ``setting_id`` and recompute every key with it (inside the caller's
        transaction, so another process sees either the old or the new database)."""
        from infozoo.registry import named_setting_id

        con.execute("ALTER TABLE runs ADD COLUMN setting_id TEXT NOT NULL DEFAULT ''")
        rows = con.execute("SELECT key, table_name, setting, method, seed, profile, params FROM runs").fetchall()
        for key, table, setting, method, seed, profile, params in rows:
            sid = named_setting_id(setting)
            task = {"table": table, "setting": setting, "method": method, "seed": seed, "profile": profile,
                    "params": json.loads(params)}
            con.execute("UPDATE runs SET key = ?, setting_id = ? WHERE key = ?", (task_key(task, sid), sid, key))
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self.write:
            con = sqlite3.connect(self.path, timeout=TIMEOUT, isolation_level=None)
        else:
            con = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro", timeout=TIMEOUT, uri=True,
                                  isolation_level=None)
        try:
            yield con
            if con.in_transaction:
                con.execute("COMMIT")
        finally:
            if con.in_transaction:
                con.execute("ROLLBACK")
            con.close()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """SQLite's errors as ``StoreError``s that say which file and what to do."""
        where = str(self.path)
        try:
            yield
        except StoreError:
            raise
        except sqlite3.OperationalError as err:
            text = str(err)
            if "readonly" in text or "read-only" in text or "unable to open" in text:
                raise StoreError(f"results database {where!r} cannot be written ({text}); make it and its "
                                 "folder writable or pass another --db path") from None
            if "locked" in text or "busy" in text:
                raise StoreError(f"results database {where!r} stayed locked by another process for {TIMEOUT:g} s "
                                 f"({doing}); try again") from None
            raise StoreError(f"results database {where!r}: {text} ({doing})") from None
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{where!r} is corrupt or not an SQLite database ({err}); move it aside or "
                             "pass another --db path") from None

    # -- rows ------------------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        with self._errors("read"), self._connect() as con:
            return con.execute("SELECT 1 FROM runs WHERE key = ?", (key,)).fetchone() is not None

    def keys(self) -> set[str]:
        if self._legacy:
            return {r.key for r in self.records()}
        with self._errors("read"), self._connect() as con:
            if not self._has_runs(con):
                return set()
            return {row[0] for row in con.execute("SELECT key FROM runs")}

    def put(self, key: str, table: str, setting: str, method: str, seed: int, profile: str,
            params: dict[str, Any], metrics: dict[str, Any], wall_time: float, setting_id: str = "") -> bool:
        """Write one row in its own transaction; False (and nothing written) if ``key`` is present."""
        from infozoo import __version__

        if not self.write:
            raise StoreError(f"results database {str(self.path)!r} was opened read-only")
        row = (key, table, setting, method, int(seed), profile, json.dumps(params, sort_keys=True),
               json.dumps(metrics, sort_keys=True, default=_plain), float(wall_time), __version__,
               git_revision(), datetime.now(UTC).isoformat(timespec="seconds"), setting_id)
        with self._errors("write"), self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            cur = con.execute(f"INSERT OR IGNORE INTO runs ({', '.join(COLUMNS)}) VALUES "
                              f"({', '.join('?' * len(COLUMNS))})", row)
            return cur.rowcount == 1

    def records(self, table: str | None = None, profile: str | None = None) -> list[Record]:
        columns = V1_COLUMNS if self._legacy else COLUMNS
        query, args = f"SELECT {', '.join(columns)} FROM runs WHERE 1=1", []
        if table is not None:
            query, args = query + " AND table_name = ?", [*args, table]
        if profile is not None:
            query, args = query + " AND profile = ?", [*args, profile]
        with self._errors("read"), self._connect() as con:
            if not self._has_runs(con):
                return []
            rows = con.execute(query + " ORDER BY table_name, setting, method, seed", args).fetchall()
        out = [Record(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), json.loads(r[7]), r[8], r[9], r[10],
                      r[11], r[12] if len(r) > 12 else "") for r in rows]
        if self._legacy:  # read-only schema 1: the ids and keys the upgrade would give
            from infozoo.registry import named_setting_id

            out = [_with_id(r, named_setting_id(r.setting)) for r in out]
        return out

    def integrity(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` for a sound file."""
        with self._errors("check"), self._connect() as con:
            return "; ".join(r[0] for r in con.execute("PRAGMA integrity_check"))

    @staticmethod
    def _has_runs(con: sqlite3.Connection) -> bool:
        return con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone() is not None


def _with_id(r: Record, sid: str) -> Record:
    from dataclasses import replace

    task = {"table": r.table, "setting": r.setting, "method": r.method, "seed": r.seed, "profile": r.profile,
            "params": r.params}
    return replace(r, key=task_key(task, sid), setting_id=sid)


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
