"""Classic mechanisms against the closed forms of REFERENCE.md."""

import json

import pytest
import torch

from infozoo.baselines.auction.classic import (
    bundle,
    discrete_virtual_values,
    myerson,
    myerson_uniform_revenue,
    optimal_bundle_reserve,
    vcg,
)
from infozoo.envs.auction.metrics import evaluate
from infozoo.registry import load_setting, make_mechanism

# Monte-Carlo evaluations use 200k profiles: the standard error of the mean revenue is below
# 0.0015 on every setting below, and the tolerances are about 4-6 standard errors.
N = 200_000


@pytest.mark.parametrize("setting,expected,tol", [
    ("additive-2x2-uniform", 2 * 1 / 3, 0.005),    # (n-1)/(n+1) per item
    ("additive-3x10-uniform", 10 * 2 / 4, 0.01),
])
def test_vcg_revenue_matches_second_price_closed_form(setting, expected, tol):
    r = evaluate(load_setting(setting), "vcg", n=N, regret_profiles=50, regret_restarts=2, regret_steps=5)
    assert r["revenue"] == pytest.approx(expected, abs=tol)


@pytest.mark.parametrize("n,expected", [(1, 0.25), (2, 0.416667), (3, 0.53125), (5, 0.671875)])
def test_myerson_closed_form_per_item(n, expected):
    assert myerson_uniform_revenue(n) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("setting,expected,tol", [
    ("additive-2x2-uniform", 2 * myerson_uniform_revenue(2), 0.005),   # 0.8333
    ("additive-3x10-uniform", 10 * myerson_uniform_revenue(3), 0.01),  # 5.3125
])
def test_itemwise_myerson_revenue_matches_closed_form(setting, expected, tol):
    r = evaluate(load_setting(setting), "myerson", n=N, regret_profiles=50, regret_restarts=2, regret_steps=5)
    assert r["revenue"] == pytest.approx(expected, abs=tol)


def test_myerson_reserve_is_one_half_for_uniform():
    m = myerson(load_setting("additive-1x2-uniform"))
    out = m(torch.tensor([[[0.6, 0.49]]], dtype=torch.float64))
    assert out.allocation[0, 0].tolist() == [1.0, 0.0]
    assert out.payment[0, 0].item() == pytest.approx(0.5, abs=1e-12)
    # two bidders: the winner pays max(reserve, second bid)
    out = myerson(load_setting("additive-2x2-uniform"))(torch.tensor([[[0.9, 0.7], [0.6, 0.2]]], dtype=torch.float64))
    assert out.payment[0].tolist() == pytest.approx([0.6 + 0.5, 0.0])


def test_discrete_virtual_values_of_yao_distribution():
    assert discrete_virtual_values([3.0, 7.0], [0.5, 0.5]) == pytest.approx([-1.0, 7.0])
    # irregular: a pooled (ironed) interval is flat and monotone
    phi = discrete_virtual_values([1.0, 2.0, 3.0, 10.0], [0.1, 0.6, 0.1, 0.2])
    assert all(a <= b + 1e-12 for a, b in zip(phi, phi[1:]))


def test_grand_bundle_revenue_on_2x2():
    r = evaluate(load_setting("additive-2x2-uniform"), "bundle", n=N, regret_profiles=50,
                 regret_restarts=2, regret_steps=5)
    assert r["revenue"] == pytest.approx(0.839, abs=0.005)
    assert 0.0 < optimal_bundle_reserve(load_setting("additive-2x2-uniform")) < 2.0


def test_lp_optimal_reaches_yao_optimum_exactly():
    s = load_setting("additive-2x2-yao")
    r = evaluate(s, "lp-optimal")
    assert r["exact"] is True and r["n"] == 16
    assert r["revenue"] == pytest.approx(10.75, abs=1e-6)
    assert r["regret_max"] == pytest.approx(0.0, abs=1e-7)
    assert r["over_allocation_max"] == pytest.approx(0.0, abs=1e-9)
    assert r["ir_violation_max"] == pytest.approx(0.0, abs=1e-7)


def test_lp_optimal_with_cbc_agrees_with_highs():
    from infozoo.baselines.auction.lp_optimal import lp_optimal

    s = load_setting("additive-2x2-yao")
    assert lp_optimal(s, solver="cbc").objective == pytest.approx(lp_optimal(s).objective, abs=1e-6)


def test_lp_optimal_refuses_continuous_settings():
    with pytest.raises(ValueError, match="discrete"):
        make_mechanism("lp-optimal", load_setting("additive-2x2-uniform"))


def test_vcg_unit_demand_pays_clarke_pivot():
    s = load_setting("unit-2x2-uniform")
    # both want item 0 most: welfare-max gives item 0 to bidder 0 (0.9 + 0.5 = 1.4 > 0.8 + 0.3)
    out = vcg(s)(torch.tensor([[[0.9, 0.3], [0.8, 0.5]]], dtype=torch.float64))
    assert out.allocation[0].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    # bidder 0 pays: others' best without it (0.8) - others' value now (0.5) = 0.3
    assert out.payment[0].tolist() == pytest.approx([0.3, 0.0])


def test_bundle_unit_demand_gives_the_winner_one_item():
    s = load_setting("unit-2x2-uniform")
    out = bundle(s, reserve=0.0)(torch.tensor([[[0.2, 0.9], [0.8, 0.1]]], dtype=torch.float64))
    assert out.allocation[0].tolist() == [[0.0, 1.0], [0.0, 0.0]]
    assert out.payment[0].tolist() == pytest.approx([0.8, 0.0])


def test_json_setting_with_asymmetric_uniform_values(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"domain": "auction", "bidders": 1, "items": 2, "valuation": "additive",
                                "values": {"kind": "uniform", "low": [[4, 4]], "high": [[16, 7]]}}))
    s = load_setting(str(path))
    v = s.sample(10_000, torch.Generator().manual_seed(0))
    assert float(v[..., 0].min()) >= 4 and float(v[..., 0].max()) <= 16
    assert float(v[..., 1].max()) <= 7
    # Myerson for U[4, 16]: phi = 2v - 16 >= 0 iff v >= 8; for U[4, 7]: reserve max(4, 3.5) = 4
    r = evaluate(s, "myerson", n=100_000, regret_profiles=20, regret_restarts=2, regret_steps=3)
    assert r["revenue"] == pytest.approx(8 * 8 / 12 + 4, abs=0.03)


def test_paired_difference_to_a_baseline():
    """Myerson minus VCG on 2x2: 2 x (5/12 - 1/3) = 1/6 in closed form; the paired standard error
    is below the revenue's own (the two auctions share every profile's high bids)."""
    r = evaluate(load_setting("additive-2x2-uniform"), "myerson", n=N, regret_profiles=10,
                 regret_restarts=1, regret_steps=1, baseline="vcg")
    assert r["baseline"] == "vcg"
    assert abs(r["revenue_minus_baseline"] - 1 / 6) < 4 * r["revenue_minus_baseline_stderr"] + 1e-3
    assert 0 < r["revenue_minus_baseline_stderr"] < r["revenue_stderr"]
    same = evaluate(load_setting("additive-2x2-yao"), "vcg", baseline="vcg")  # exact enumeration
    assert same["revenue_minus_baseline"] == 0.0 and same["revenue_minus_baseline_stderr"] == 0.0
