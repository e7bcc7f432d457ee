"""The infozoo command line."""

import json
import subprocess
import sys

import pytest

from infozoo.bench.runner import run_table
from infozoo.bench.store import Store
from infozoo.bench.tables.auction import TABLE
from infozoo.cli import main


def test_eval_prints_one_json_object_with_the_contract_keys(capsys):
    assert main(["eval", "--setting", "additive-2x2-yao", "--mechanism", "lp-optimal", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ["revenue", "welfare", "ir_violation", "over_allocation_max", "regret_mean",
                "regret_max", "regret_budget", "n", "strategyproof_by_construction"]:
        assert key in out
    assert out["revenue"] == pytest.approx(10.75, abs=1e-6)


def test_eval_with_regret_budget_flags(capsys):
    assert main(["eval", "--setting", "additive-2x2-uniform", "--mechanism", "first-price", "--n", "500",
                 "--regret-restarts", "2", "--regret-steps", "5", "--regret-profiles", "50", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["n"] == 500 and "50 profiles x 2 restarts x 5 steps" in out["regret_budget"]
    assert out["regret_mean"] > 0


def test_list_names_envs_settings_and_mechanisms(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    for name in ["auction-v0", "additive-2x2-yao", "lp-optimal", "first-price"]:
        assert name in text


def test_report_from_store(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    run_table(TABLE, "quick", Store(db), only=lambda t: t.setting == "additive-2x2-yao" and t.method == "vcg")
    assert main(["report", "--db", str(db), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "quick" / "auction.md").is_file()
    assert main(["report", "--db", str(tmp_path / "none.sqlite")]) == 2


def test_bad_arguments_exit_nonzero(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--setting", "additive-2x2-uniform", "--mechanism", "vcg", "--n", "0"])
    assert exc.value.code == 2
    assert main(["train", "no-such-solver", "--setting", "additive-2x2-uniform", "--out", "x"]) == 2
    assert main(["eval", "--setting", "dm-1buyer-uniform", "--mechanism", "x", "--baseline", "vcg"]) == 2
    assert "--baseline (a paired revenue difference) is for auction settings" in capsys.readouterr().err


def test_train_set_overrides_config_fields(tmp_path, capsys):
    from infozoo.cli import with_overrides
    from infozoo.solvers.gemnet.train import Config

    cfg = with_overrides(Config(), ["menu_grid=12", "hidden=[16, 16]", "lr=1", "solver=cbc"])
    assert (cfg.menu_grid, cfg.hidden, cfg.lr, cfg.solver) == (12, (16, 16), 1.0, "cbc")
    out = tmp_path / "rn"
    assert main(["train", "rochetnet", "--setting", "additive-1x2-uniform", "--out", str(out),
                 "--set", "steps=30", "--set", "menu_size=5"]) == 0
    assert json.loads((out / "config.json").read_text())["menu_size"] == 5
    for bad in (["--set", "no_such_field=1"], ["--set", "steps"], ["--set", "steps=fast"]):
        assert main(["train", "rochetnet", "--setting", "additive-1x2-uniform", "--out", str(out), *bad]) == 2
    err = capsys.readouterr().err
    assert "KEY one of:" in err and "menu_grid" in err and "expected a int like" in err


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "infozoo.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("infozoo ")


def test_import_infozoo_does_not_import_torch():
    code = "import sys, infozoo; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_solving_a_milp_keeps_stdout_clean_for_json():
    """highspy prints a banner on the C-level stdout when its first solver object is built; the
    solve path silences it, so ``infozoo train`` output stays one JSON object."""
    code = ("import json, pulp; from infozoo.core.lp import solve\n"
            "p = pulp.LpProblem('t', pulp.LpMaximize); x = pulp.LpVariable('x', 0, 1, cat='Integer')\n"
            "p += x; p += x <= 1.5\n"
            "r = solve(p, 'highs', fallback=False); print(json.dumps([r.solver, r.status, x.value()]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["highs", "Optimal", 1.0]
