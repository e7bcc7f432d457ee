"""Results store and bench runner: rows land in SQLite, a rerun skips what is there, an interrupted
sweep resumes, tables render from the store, and Ray runs the same tasks."""

import dataclasses
import sqlite3

import pytest

from infozoo.bench.report import write_report
from infozoo.bench.runner import TableSpec, Task, run_table
from infozoo.bench.store import Store
from infozoo.bench.tables.auction import TABLE

YAO = {"vcg", "myerson", "lp-optimal"}


def only_yao(task):
    return task.setting == "additive-2x2-yao" and task.method in YAO


def test_rows_are_stored_with_provenance_and_rerun_skips(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    s1 = run_table(TABLE, "quick", store, only=only_yao)
    assert s1.done == 3 and not s1.failed
    recs = store.records("auction")
    assert {r.method for r in recs} == YAO
    lp = next(r for r in recs if r.method == "lp-optimal")
    assert lp.metrics["revenue"] == pytest.approx(10.75, abs=1e-6)
    assert lp.version and lp.git_rev and lp.created_at and lp.params["n"] > 0
    s2 = run_table(TABLE, "quick", store, only=only_yao)
    assert s2.done == 0 and s2.skipped == 3


def test_interrupted_sweep_resumes(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    flaky = TableSpec("auction", TABLE.tasks, "tests.bench.flaky_run:run", TABLE.render)
    s1 = run_table(flaky, "quick", store, only=only_yao)
    assert s1.done == 2 and len(s1.failed) == 1  # myerson "crashed"; the others were saved
    s2 = run_table(TABLE, "quick", store, only=only_yao)
    assert s2.done == 1 and s2.skipped == 2
    assert len(store.records()) == 3


def test_report_renders_markdown_csv_and_plot(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    run_table(TABLE, "quick", store, only=only_yao)
    files = write_report([TABLE], store, tmp_path / "out")
    names = {f.name for f in files}
    assert {"auction.md", "auction_0.csv", "auction_revenue.png", "README.md"} <= names
    md = (tmp_path / "out" / "quick" / "auction.md").read_text()
    assert "10.7500" in md and "exact: every misreport" in md


def test_store_is_plain_sqlite(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    store.put("k", "t", "s", "m", 0, "quick", {"a": 1}, {"revenue": 1.0}, 0.1)
    with sqlite3.connect(tmp_path / "r.sqlite") as con:
        assert con.execute("SELECT method, seed FROM runs").fetchall() == [("m", 0)]


def test_task_key_depends_on_everything():
    a = Task("auction", "s", "m", 0, "quick", {"n": 1})
    assert a.key != Task("auction", "s", "m", 1, "quick", {"n": 1}).key
    assert a.key != Task("auction", "s", "m", 0, "quick", {"n": 2}).key
    assert a.key == Task("auction", "s", "m", 0, "quick", {"n": 1}).key


def test_process_pool_executor(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    s = run_table(TABLE, "quick", store, workers=2, only=only_yao)
    assert s.done == 3 and not s.failed


def test_ray_executor_on_a_real_local_instance(tmp_path):
    pytest.importorskip("ray")
    store = Store(tmp_path / "r.sqlite")
    s = run_table(TABLE, "quick", store, executor="ray", workers=1,
                  only=lambda t: t.setting == "additive-2x2-yao" and t.method in {"vcg", "myerson"})
    assert s.done == 2 and not s.failed
    assert {r.method for r in store.records()} == {"vcg", "myerson"}


def test_bad_profile_and_executor(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    with pytest.raises(ValueError, match="quick, full"):
        run_table(TABLE, "medium", store)
    with pytest.raises(ValueError, match="local, ray"):
        run_table(TABLE, "quick", store, executor="dask")


def test_report_draws_the_menu_picture_from_a_stored_checkpoint(tmp_path):
    from infozoo.envs.auction.settings import NAMED_SETTINGS
    from infozoo.solvers.gemnet import train
    from tests.gemnet.test_gemnet import tiny_config

    s = NAMED_SETTINGS["additive-1x2-uniform"]()
    train.fit(s, tiny_config(s, steps=20)).save(tmp_path / "ck")
    store = Store(tmp_path / "r.sqlite")
    metrics = {"revenue": 0.5, "regret_mean": 0.0, "regret_max": 0.0, "over_allocation_max": 0.0, "n": 10,
               "transform_time": 1.5, "checkpoint": str(tmp_path / "ck")}
    store.put("k", "auction", "additive-1x2-uniform", "rochetnet", 0, "quick", {"n": 10}, metrics, 1.0)
    store.put("k2", "auction", "additive-2x2-uniform", "gemnet", 0, "quick", {"n": 10},
              {**metrics, "checkpoint": str(tmp_path / "gone")}, 1.0)  # deleted checkpoint: no picture
    files = {f.name for f in write_report([TABLE], store, tmp_path / "out")}
    assert "rochetnet_menus_additive-1x2-uniform.png" in files
    assert not any(name.startswith("gemnet_menus") for name in files)
    assert "| 1.5 |" in (tmp_path / "out" / "quick" / "auction.md").read_text()  # the transform-time column


def test_auction_sweep_starts_the_costliest_tasks_first():
    """GemNet's tasks come first, the largest setting first; ordering drops and repeats nothing."""
    quick = TABLE.tasks("quick")
    assert [(t.method, t.setting) for t in quick[:2]] == [("gemnet", "additive-2x3-uniform"),
                                                        ("gemnet", "additive-2x2-uniform")]
    assert quick[3].setting == "additive-2x2-yao"  # discrete GemNet (seconds) after the continuous ones
    assert len({t.key for t in quick}) == len(quick) == 45


def test_task_filter_picks_settings_methods_and_seeds(tmp_path):
    """``bench --setting/--method/--max-seeds`` (one seed of the large settings on a leased GPU):
    the filter keeps exactly the asked tasks, refuses names the profile lacks, and touches no store."""
    from infozoo.bench.runner import task_filter
    from infozoo.cli import main

    assert task_filter(TABLE, "full") is None  # no filter: every task
    keep = task_filter(TABLE, "full", settings=["additive-2x5-uniform", "additive-3x10-uniform"],
                       methods=["lottery-ama"], max_seeds=2)
    picked = [t for t in TABLE.tasks("full") if keep(t)]
    assert sorted((t.setting, t.seed) for t in picked) == [("additive-2x5-uniform", 0), ("additive-2x5-uniform", 1),
                                                           ("additive-3x10-uniform", 0), ("additive-3x10-uniform", 1)]
    assert {t.method for t in picked} == {"lottery-ama"}
    with pytest.raises(ValueError, match=r"no setting additive-3x10-uniform; valid: .*additive-2x3-uniform"):
        task_filter(TABLE, "quick", settings=["additive-3x10-uniform"])  # a full-profile setting
    with pytest.raises(ValueError, match="no method gemnett; valid: amenunet"):
        task_filter(TABLE, "full", methods=["gemnett"])
    db = tmp_path / "r.sqlite"
    assert main(["bench", "auction", "--db", str(db), "--method", "gemnett"]) == 2
    assert not db.exists()
    assert main(["bench", "auction", "--db", str(db), "--setting", "additive-2x2-yao", "--method", "vcg",
                 "--method", "myerson"]) == 0
    assert {(r.method, r.setting) for r in Store(db).records()} == {("vcg", "additive-2x2-yao"),
                                                                   ("myerson", "additive-2x2-yao")}


def test_gemnet_runs_only_where_its_certificate_can_start():
    """The full profile has GemNet tasks on 2x5 (grid menus) but none on 3x10 and 5x10, whose
    continuous-menu certificate would start from 2^30 and 2^50 cells; the table says so."""
    from infozoo.bench.store import Record

    full = TABLE.tasks("full")
    gemnet = {t.setting for t in full if t.method == "gemnet"}
    assert "additive-2x5-uniform" in gemnet and not gemnet & {"additive-3x10-uniform", "additive-5x10-uniform"}
    assert any(t.method == "amenunet" and t.setting == "additive-3x10-uniform" for t in full)
    metrics = {"revenue": 5.0, "n": 10, "regret_mean": 0.0, "regret_max": 0.0, "over_allocation_max": 0.0}
    rec = Record("k", "auction", "additive-3x10-uniform", "vcg", 0, "full", {}, metrics, 1.0, "v", "g", "t")
    notes = TABLE.render([rec])[0].notes
    assert any("gemnet is not run on additive-3x10-uniform" in n for n in notes)
    rec = dataclasses.replace(rec, setting="additive-2x3-uniform")
    assert not any("gemnet" in n for n in TABLE.render([rec])[0].notes)


def test_reproduce_runs_every_table_unfiltered(tmp_path, monkeypatch):
    """``infozoo reproduce`` (the README's main job) goes through ``bench``'s filter arguments
    without having them: every registered table runs, with no task filter."""
    import infozoo.bench.perf
    import infozoo.bench.report
    import infozoo.bench.runner
    from infozoo.bench.runner import RunSummary
    from infozoo.cli import main
    from infozoo.registry import names

    calls = []
    monkeypatch.setattr(infozoo.bench.runner, "run_table",
                        lambda spec, profile, store, executor, workers, address, only: (
                            calls.append((spec.name, profile, only)), RunSummary())[1])
    monkeypatch.setattr(infozoo.bench.report, "write_report", lambda *a, **k: [])
    monkeypatch.setattr(infozoo.bench.perf, "run_perf", lambda out=None: None)
    assert main(["reproduce", "--db", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "out")]) == 0
    assert sorted(c[0] for c in calls) == sorted(names("table")) and all(c[1:] == ("quick", None) for c in calls)
