"""The data-market net: small-budget correctness, save/load, determinism, and the table."""

import pytest
import torch

from infozoo.bench.runner import Task
from infozoo.bench.store import Record
from infozoo.envs.data_market.metrics import evaluate
from infozoo.registry import load, load_setting, make_mechanism
from infozoo.solvers.data_market_net import train


def test_menu_net_learns_the_two_type_optimum():
    setting = load_setting("dm-1buyer-two-types")
    cfg = train.default_config(setting, seed=0)
    cfg.restarts, cfg.steps = 8, 2000
    net = train.fit(setting, cfg)
    rev = evaluate(setting, net)["revenue"]
    assert rev >= 0.23 * (1 - 0.005)
    types, _ = setting.type_space()
    low_item = net.menu.experiments[net.menu.choice(types[:, 0, :])[0]]
    assert abs(float(low_item[0, 0]) - 0.8) < 0.01 and float(low_item[1, 1]) > 0.999


def test_menu_net_sells_full_information_on_the_uniform_prior():
    setting = load_setting("dm-1buyer-uniform")
    cfg = train.default_config(setting, seed=0)
    cfg.restarts, cfg.steps, cfg.batch, cfg.prune_samples = 1, 400, 512, 20_000
    net = train.fit(setting, cfg)
    assert len(net.menu.prices) == 1
    assert torch.allclose(net.menu.experiments[0], torch.eye(2, dtype=torch.float64), atol=0.02)
    assert abs(float(net.menu.prices[0]) - 0.25) < 0.02
    assert evaluate(setting, net, n=20_000)["regret_mean"] == 0.0  # a menu is IC by construction


def _tiny(setting_name, tmp_path):
    setting = load_setting(setting_name)
    cfg = train.default_config(setting, seed=3)
    cfg.steps, cfg.batch, cfg.batch_bayesian, cfg.others, cfg.misreports = 20, 32, 8, 4, 4
    net = train.fit(setting, cfg)
    net.save(tmp_path / "ckpt")
    return setting, cfg, net


def test_multi_net_save_load_and_determinism(tmp_path):
    setting, cfg, net = _tiny("dm-2buyers-uniform-a0.5", tmp_path)
    again = train.fit(setting, cfg)
    loaded = make_mechanism(f"data-market-net:{tmp_path / 'ckpt'}", setting)
    v = setting.sample(16, torch.Generator().manual_seed(0))
    a, b, c = net(v), again(v), loaded(v)
    assert torch.equal(a.payment, b.payment) and torch.equal(a.experiment, b.experiment)
    assert torch.allclose(a.payment, c.payment) and torch.allclose(a.experiment, c.experiment)
    r = evaluate(setting, loaded, n=2000, regret_profiles=20, regret_restarts=1, regret_steps=2)
    assert r["ir_violation_max"] <= 1e-9  # IR by construction
    assert {"revenue", "obedience_violation", "ir_violation", "regret_mean", "regret_budget"} <= set(r)


def test_bayesian_net_trains_and_reports_interim_violations(tmp_path):
    setting, _, net = _tiny("dm-2buyers-uniform-a0.5-bic", tmp_path)
    r = evaluate(setting, net, n=2000, regret_profiles=8, regret_others=8, regret_grid=5)
    assert "interim" in r["regret_budget"] and r["obedience_violation"] >= 0
    assert "train_obedience_violation" in net.report


def test_solver_is_registered_with_the_contract():
    solver = load("solver", "data-market-net")
    assert {"Config", "default_config", "fit", "load"} <= set(dir(solver))


def test_table_runs_and_renders_a_baseline():
    from infozoo.bench.tables.data_market import TABLE, run

    assert any(t.method == "data-market-net" for t in TABLE.tasks("quick"))
    task = Task("data-market", "dm-1buyer-two-types", "theory", 0, "quick", {"n": 1000, "regret_profiles": 10})
    metrics = run(task)
    assert abs(metrics["revenue"] - 0.23) < 1e-9 and abs(metrics["theory_optimum"] - 0.23) < 1e-9
    rec = Record("k", "data-market", task.setting, "theory", 0, "quick", task.params, metrics, 0.0, "", "", "")
    table = TABLE.render([rec])[0]
    assert table.rows[0][0] == "dm-1buyer-two-types" and table.rows[0][1] == "0.2300"


def test_a_mechanism_built_for_another_setting_is_refused():
    mech = make_mechanism("theory", load_setting("dm-2buyers-uniform-a2"))
    with pytest.raises(ValueError, match="built for setting dm-2buyers-uniform-a2"):
        evaluate(load_setting("dm-2buyers-uniform-a0.5"), mech, n=100)
