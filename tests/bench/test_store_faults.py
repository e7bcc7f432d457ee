"""The results store under faults: unusable databases are refused before any work, a sweep killed
with SIGKILL resumes with nothing lost or duplicated, several processes write one database, Ctrl-C
ends quietly, and a database of the previous schema is upgraded in place."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

import infozoo.bench.tables.auction as auction_table
from infozoo.bench.runner import Task, run_table
from infozoo.bench.store import Store
from infozoo.bench.tables.auction import TABLE
from infozoo.cli import main
from tests.bench.tiny_table import ROOT, launch

YAO_VCG = ["--setting", "additive-2x2-yao", "--method", "vcg"]


def _rows(db):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
        return con.execute("SELECT key, setting, method, seed, created_at, metrics FROM runs ORDER BY key").fetchall()


def _no_task_may_run(monkeypatch):
    def run(task):
        raise AssertionError(f"task {task} ran although the database was unusable")

    monkeypatch.setattr(auction_table, "run", run)


def test_read_only_database_is_refused_before_any_task_runs(tmp_path, monkeypatch, capsys):
    """`bench` used to compute the first task, then crash on the write with a raw OperationalError."""
    db = tmp_path / "r.sqlite"
    Store(db)
    if os.geteuid() == 0:  # root ignores file modes: open every connection read-only instead
        connect = sqlite3.connect
        monkeypatch.setattr(sqlite3, "connect", lambda path, *a, **k: connect(
            f"file:{path}?mode=ro" if not str(path).startswith("file:") else path, *a, **{**k, "uri": True}))
    else:
        db.chmod(0o444)
    _no_task_may_run(monkeypatch)
    assert main(["bench", "auction", "--db", str(db), *YAO_VCG]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be written" in err[0] and str(db) in err[0]


@pytest.mark.parametrize("kind", ["garbage", "other-schema", "other-program", "folder"])
def test_unusable_database_is_a_clear_error_and_is_left_untouched(tmp_path, monkeypatch, capsys, kind):
    db = tmp_path / "r.sqlite"
    if kind == "garbage":
        db.write_bytes(b"this is not a database, it is somebody's notes\n" * 100)
    elif kind == "folder":
        db.mkdir()
    else:
        with sqlite3.connect(db) as con:
            con.execute("CREATE TABLE runs (a INTEGER)" if kind == "other-schema" else "CREATE TABLE photos (b)")
    before = db.read_bytes() if db.is_file() else None
    _no_task_may_run(monkeypatch)
    for argv in (["bench", "auction", "--db", str(db), *YAO_VCG], ["report", "--db", str(db), "--out", str(tmp_path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(db) in err[0], err
        assert {"garbage": "not an SQLite database", "other-schema": "another schema",
                "other-program": "another program", "folder": "is a folder"}[kind] in err[0]
    assert (db.read_bytes() if db.is_file() else None) == before


def test_truncated_database_is_reported_as_corrupt(tmp_path):
    db = tmp_path / "r.sqlite"
    store = Store(db)
    for i in range(200):
        store.put(f"k{i}", "t", "s", "m", i, "quick", {"i": i}, {"v": "x" * 200}, 0.1)
    db.write_bytes(db.read_bytes()[:4096 * 3])  # the header survives, the pages do not
    with pytest.raises(ValueError, match="corrupt|malformed"):
        Store(db).records()


def test_sigkill_mid_sweep_then_resume_loses_and_duplicates_nothing(tmp_path):
    """A local two-worker sweep is killed (SIGKILL, the whole process group) while tasks are in
    flight, then rerun: the database passes SQLite's integrity check, every row written before the
    kill is kept unchanged, and every task has exactly one row."""
    db, marks = tmp_path / "r.sqlite", tmp_path / "marks"
    marks.mkdir()
    args = ["bench", "tiny", "--db", str(db), "--workers", "2"]
    proc = launch(args, marks, tasks=8, sleep=0.4)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = len(_rows(db)) if db.exists() else 0
        if done >= 2 and len(list(marks.iterdir())) > done:  # rows written and a task in flight
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail(f"the sweep did not get going: {proc.communicate()}")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    before = _rows(db)
    assert 2 <= len(before) < 8
    resumed = launch(args, marks, tasks=8, sleep=0.4)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert f"{8 - len(before)} run, {len(before)} already in" in out
    after = _rows(db)
    assert Store(db).integrity() == "ok"
    assert len(after) == 8 and len({(r[1], r[2], r[3]) for r in after}) == 8
    assert set(before) <= set(after)  # the rows from before the kill, byte for byte


def test_four_processes_write_one_database(tmp_path):
    """Four processes insert rows into one database at once: every row lands exactly once, a key
    written by several of them is kept once (the first write wins), the file stays sound."""
    db = tmp_path / "r.sqlite"
    code = ("import sys; from infozoo.bench.store import Store\n"
            "s = Store(sys.argv[1]); w = int(sys.argv[2])\n"
            "for i in range(40):\n"
            "    s.put(f'w{w}-{i}', 't', f's{i}', f'm{w}', i, 'quick', {}, {'w': w}, 0.0)\n"
            "    if i % 10 == 0: s.put(f'shared-{i}', 't', 's', 'm', i, 'quick', {}, {'w': w}, 0.0)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(db), str(w)], env=env, stderr=subprocess.PIPE,
                              text=True) for w in range(4)]
    for p in procs:
        assert p.wait(120) == 0, p.stderr.read()
    rows = Store(db).records()
    assert len(rows) == 4 * 40 + 4 and Store(db).integrity() == "ok"
    expected = sorted(f"w{w}-{i}" for w in range(4) for i in range(40))
    assert sorted(r.key for r in rows if r.key.startswith("w")) == expected


def test_four_workers_of_one_sweep_write_one_database(tmp_path):
    from tests.bench.tiny_table import TABLE as TINY

    store = Store(tmp_path / "r.sqlite")
    summary = run_table(TINY, "quick", store, workers=4)
    assert summary.done == 8 and not summary.failed
    assert len(store.records()) == 8 and store.integrity() == "ok"


def test_ctrl_c_ends_a_sweep_with_one_line_and_keeps_its_rows(tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) during a two-worker sweep: exit code 130, a
    short message, no traceback from the parent or the workers, the database sound."""
    db, marks = tmp_path / "r.sqlite", tmp_path / "marks"
    marks.mkdir()
    proc = launch(["bench", "tiny", "--db", str(db), "--workers", "2"], marks, tasks=6, sleep=5.0)
    deadline = time.monotonic() + 60
    while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1].startswith("infozoo: interrupted")
    assert Store(db).integrity() == "ok"


def test_database_of_the_previous_schema_is_upgraded_with_its_rows(tmp_path):
    """A database written before settings were identified by content (no ``setting_id`` column,
    keys hashed from the name) keeps its rows; their keys are recomputed, so a rerun skips them."""
    import hashlib
    from dataclasses import asdict

    db = tmp_path / "old.sqlite"
    task = next(t for t in TABLE.tasks("quick") if t.setting == "additive-2x2-yao" and t.method == "vcg")
    old_key = hashlib.sha256(json.dumps(asdict(task), sort_keys=True).encode()).hexdigest()[:24]
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE runs (key TEXT PRIMARY KEY, table_name TEXT NOT NULL, setting TEXT NOT NULL, "
                    "method TEXT NOT NULL, seed INTEGER NOT NULL, profile TEXT NOT NULL, params TEXT NOT NULL, "
                    "metrics TEXT NOT NULL, wall_time REAL NOT NULL, version TEXT NOT NULL, git_rev TEXT NOT NULL, "
                    "created_at TEXT NOT NULL)")
        con.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (old_key, "auction", task.setting, "vcg", 0, "quick", json.dumps(task.params, sort_keys=True),
                     json.dumps({"revenue": 9.0}), 1.0, "0.0", "abc", "2024-01-01T00:00:00+00:00"))
    assert [r.key for r in Store(db, write=False).records()] == [task.key]  # read-only: upgraded view
    summary = run_table(TABLE, "quick", Store(db), only=lambda t: t.key == task.key)
    assert summary.skipped == 1 and summary.done == 0
    (rec,) = Store(db).records()
    assert rec.key == task.key and rec.setting_id == task.setting_id != "" and rec.metrics == {"revenue": 9.0}


def test_a_row_is_never_replaced(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    assert store.put("k", "t", "s", "m", 0, "quick", {}, {"v": 1}, 0.0) is True
    assert store.put("k", "t", "s", "m", 0, "quick", {}, {"v": 2}, 0.0) is False
    assert store.records()[0].metrics == {"v": 1}


def test_task_key_identifies_the_setting_by_content(monkeypatch):
    """The same name with other content is another task (a built-in's definition may change)."""
    from infozoo.envs.auction import settings

    task = Task("auction", "additive-2x2-yao", "vcg", 0, "quick", {})
    key, sid = task.key, task.setting_id
    monkeypatch.setitem(settings.NAMED_SETTINGS, "additive-2x2-yao", lambda: settings.AuctionSetting(
        2, 2, "additive", settings.DiscreteValues((3.0, 7.0), (0.25, 0.75)), name="additive-2x2-yao"))
    assert task.setting_id != sid and task.key != key
