"""Tables tell the truth: a GemNet cell with any uncertified seed says so in every rendering, and
profiles are never averaged together."""

import csv
import re

import infozoo.bench.plots as plots
from infozoo.bench.report import write_report
from infozoo.bench.runner import Task
from infozoo.bench.store import Store
from infozoo.bench.tables.auction import TABLE
from infozoo.cli import main

METRICS = {"regret_mean": 0.0, "regret_max": 0.0, "over_allocation_max": 0.0, "n": 10,
           "regret_budget": "exact", "strategyproof_by_construction": True}


def _put(store, setting, method, seed, profile, revenue, **extra):
    task = Task("auction", setting, method, seed, profile, {})
    store.put(task.key, "auction", setting, method, seed, profile, {}, {**METRICS, "revenue": revenue, **extra}, 1.0,
              **({"setting_id": task.setting_id} if hasattr(Task, "setting_id") else {}))


def test_gemnet_with_any_uncertified_seed_is_marked_in_every_rendering(tmp_path, monkeypatch):
    """Seed 0 certified, seeds 1-2 not: the SP column used to read seed 0's flag only ("certified"
    beside a mean over all three) and the revenue table marked nothing."""
    store = Store(tmp_path / "r.sqlite")
    for seed, ok in enumerate([True, False, False]):
        _put(store, "additive-2x2-uniform", "gemnet", seed, "quick", 0.87 + seed / 100, certified=ok)
    _put(store, "additive-2x2-uniform", "vcg", 0, "quick", 0.83)
    revenue, detail = TABLE.render(store.records())
    assert "uncertified: 2 of 3 seeds" in next(r for r in revenue.rows if r[0] == "gemnet")[1]
    assert "uncertified (2 of 3 seeds)" in next(r for r in detail.rows if r[1] == "gemnet")
    labels = []
    save = plots.save
    monkeypatch.setattr(plots, "save", lambda fig, path: (labels.extend(
        t.get_text() for ax in fig.axes for t in ax.get_xticklabels()), save(fig, path))[1])
    write_report([TABLE], store, tmp_path / "out")
    md = (tmp_path / "out" / "quick" / "auction.md").read_text()
    revenue_row = next(line for line in md.splitlines() if line.startswith("| gemnet |"))
    assert "uncertified: 2 of 3 seeds" in revenue_row
    detail_row = next(line for line in md.splitlines() if "| gemnet |" in line and line.startswith("| additive"))
    assert "uncertified (2 of 3 seeds)" in detail_row and "| certified |" not in md
    for k in (0, 1):
        with open(tmp_path / "out" / "quick" / f"auction_{k}.csv") as f:
            gem = [row for row in csv.reader(f) if "gemnet" in row]
        assert gem and any("uncertified" in cell for cell in gem[0])
    assert "gemnet (uncertified)" in labels and "vcg" in labels
    assert "uncertified" in (tmp_path / "out" / "README.md").read_text()


def test_all_certified_seeds_read_certified(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    for seed in range(3):
        _put(store, "additive-2x2-uniform", "gemnet", seed, "quick", 0.87, certified=True)
    text = "".join(str(t.rows) for t in TABLE.render(store.records()))
    assert "'certified'" in text and "uncertified" not in text


def test_report_without_profile_never_mixes_profiles(tmp_path, capsys):
    """`infozoo report` (no --profile) used to average quick and full rows as if they were seeds."""
    store = Store(tmp_path / "r.sqlite")
    _put(store, "additive-2x2-yao", "vcg", 0, "quick", 1.0)
    _put(store, "additive-2x2-yao", "vcg", 0, "full", 3.0)
    assert main(["report", "--db", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "out")]) == 0
    for path in (tmp_path / "out").rglob("*.md"):
        assert "2.0000" not in path.read_text() and not re.search(r"\d ± \d", path.read_text()), path
    quick = (tmp_path / "out" / "quick" / "auction.md").read_text()
    full = (tmp_path / "out" / "full" / "auction.md").read_text()
    index = (tmp_path / "out" / "README.md").read_text()
    assert "1.0000" in quick and "3.0000" not in quick and "quick profile" in quick
    assert "3.0000" in full and "1.0000" not in full and "full profile" in full
    assert index.index("(full profile)") < index.index("(quick profile)")
    assert main(["report", "--db", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "q"), "--profile",
                 "quick"]) == 0
    assert not (tmp_path / "q" / "full").exists()


def test_rows_of_an_older_definition_of_a_setting_are_left_out(tmp_path):
    """Rows are identified by the setting's content: a row computed on other content under a built-in's
    name (its definition changed since) is not shown as if it were the current setting."""
    store = Store(tmp_path / "r.sqlite")
    _put(store, "additive-2x2-yao", "vcg", 0, "quick", 10.0)
    store.put("stale", "auction", "additive-2x2-yao", "myerson", 0, "quick", {}, {**METRICS, "revenue": 99.0}, 1.0,
              setting_id="0123456789abcdef")
    write_report([TABLE], store, tmp_path / "out")
    md = (tmp_path / "out" / "quick" / "auction.md").read_text()
    assert "10.0000" in md and "99.0000" not in md and "1 stored row(s) computed on an earlier" in md
