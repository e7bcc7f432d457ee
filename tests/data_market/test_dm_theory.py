"""Theory of data markets: closed forms (to 1e-6), the menu LP, virtual values, Monte Carlo."""

import math

import pytest
import torch

from infozoo.envs.data_market import settings as S
from infozoo.envs.data_market import theory as T
from infozoo.envs.data_market.experiments import full_information, value
from infozoo.envs.data_market.metrics import evaluate, search_regret


def test_uniform_one_buyer_closed_form_and_posted_price_calculus():
    cf = T.uniform_one_buyer()
    assert cf["price"] == 0.25 and cf["revenue"] == 0.125
    # revenue of full information at price p is p * P(min(theta, 1 - theta) >= p) = p (1 - 2p)
    p = torch.linspace(0, 0.5, 5001, dtype=torch.float64)
    rev = p * (1 - 2 * p)
    assert abs(float(p[rev.argmax()]) - 0.25) < 1e-3 and abs(float(rev.max()) - 0.125) < 1e-6


def test_two_type_closed_form_matches_reference():
    cf = T.two_types(0.2, 0.7, 0.5)
    assert cf["discriminate"]
    assert abs(cf["pi1"] - 0.8) < 1e-12 and cf["pi2"] == 1.0
    assert abs(cf["revenue"] - (0.5 * 0.16 + 0.5 * 0.3)) < 1e-12
    # discrimination pays iff P(theta_H) > theta_L / theta_H = 2/7
    assert not T.two_types(0.2, 0.7, 0.25)["discriminate"]
    assert T.two_types(0.2, 0.7, 0.3)["discriminate"]


@pytest.mark.parametrize("mu", [0.25, 0.5, 0.8])
def test_menu_lp_reproduces_two_type_optimum(mu):
    types = torch.tensor([[0.2, 0.8], [0.7, 0.3]], dtype=torch.float64)
    probs = torch.tensor([1 - mu, mu], dtype=torch.float64)
    menu, rev = T.menu_lp(types, probs, torch.eye(2, dtype=torch.float64))
    cf = T.two_types(0.2, 0.7, mu)
    assert abs(rev - cf["revenue"]) < 1e-6
    assert abs(menu.revenue(types, probs) - cf["revenue"]) < 1e-6  # hard choice realises it
    if cf["discriminate"]:
        low_item = menu.experiments[menu.choice(types)[0]]
        assert abs(float(low_item[0, 0]) - 0.8) < 1e-6 and abs(float(low_item[1, 1]) - 1.0) < 1e-6


def test_menu_lp_on_uniform_grid_is_close_to_one_eighth():
    setting = S.from_dict({"domain": "data-market", "buyers": 1, "prior": {"kind": "beta", "a": 1, "b": 1}})
    types, probs = T.type_grid(setting, 60)
    menu, rev = T.menu_lp(types, probs, torch.eye(2, dtype=torch.float64))
    assert abs(rev - 0.125) < 5e-3  # grid discretisation only
    pruned = menu.pruned(types, probs)
    assert len(pruned.prices) == 1  # a single item: full information
    assert torch.allclose(pruned.experiments[0], full_information(2), atol=1e-6)


def test_two_buyer_closed_form_and_symmetry():
    assert abs(T.two_buyer_uniform_revenue(0.5) - 13 / 48) < 1e-12
    assert abs(T.two_buyer_uniform_revenue(2.0) - 13 / 24) < 1e-12
    for a in (0.3, 0.7, 1.5):
        assert abs(T.two_buyer_uniform_revenue(a) - a * T.two_buyer_uniform_revenue(1 / a)) < 1e-12


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 2.0])
def test_virtual_value_quadrature_matches_closed_form(alpha):
    setting = S.two_buyers(alpha)
    assert abs(T.multi_buyer_revenue(setting, grid=4000) - T.two_buyer_uniform_revenue(alpha)) < 1e-6


def test_symmetry_relation_for_exponential_values():
    a = 0.5
    lo = T.multi_buyer_revenue(S.two_buyers(a, S.Values("exponential", rate=1.0)), grid=3000)
    hi = T.multi_buyer_revenue(S.two_buyers(1 / a, S.Values("exponential", rate=1.0)), grid=3000)
    # OPT(alpha) = alpha OPT(1/alpha) uses E[phi] = 0, which the midpoint rule meets only up to the
    # log singularity of the exponential quantile at q = 1 (an O(h log h) quadrature error)
    assert abs(hi - (1 / a) * lo) < 5e-4


def test_value_of_information_matches_simulation():
    g = torch.Generator().manual_seed(0)
    theta = torch.tensor([0.3, 0.7], dtype=torch.float64)
    exp = torch.tensor([[0.8, 0.2], [0.1, 0.9]], dtype=torch.float64)
    n = 400_000
    w = torch.multinomial(theta, n, True, generator=g)
    s = torch.multinomial(exp[w], 1, generator=g).squeeze(-1)
    # best response: posterior argmax per signal
    post = theta[:, None] * exp  # [w, s]
    act = post.argmax(0)[s]
    simulated = (act == w).double().mean() - theta.max()
    exact = value(theta, exp, torch.eye(2, dtype=torch.float64))
    assert abs(float(simulated - exact)) < 4 * math.sqrt(0.25 / n)


def test_theory_mechanism_revenue_by_monte_carlo():
    setting = S.NAMED_SETTINGS["dm-2buyers-uniform-a0.5"]()
    r = evaluate(setting, "theory", n=200_000, regret_profiles=50, regret_restarts=0, regret_steps=0)
    assert abs(r["revenue"] - 13 / 48) < 4 * r["revenue_stderr"]
    assert r["ir_violation_max"] < 1e-12 and r["obedience_violation"] == 0.0


@pytest.mark.parametrize("name", ["dm-2buyers-uniform-a2", "dm-2buyers-mixture-a0.5", "dm-2buyers-asym-uniform-a0.5"])
def test_virtual_value_mechanism_is_ex_post_ic(name):
    setting = S.NAMED_SETTINGS[name]()
    mech = T.VirtualValueMechanism(setting)
    v = setting.sample(300, torch.Generator().manual_seed(1))
    rgt = search_regret(setting, mech, v, grid=201, restarts=0, steps=0)
    assert float(rgt.max()) < 1e-9


def test_ironed_virtual_values_are_monotone():
    vv = T.VirtualValue(S.NAMED_SETTINGS["dm-2buyers-mixture-a0.5"]().values.buyer(0))
    v = torch.linspace(0, 3, 2001, dtype=torch.float64)
    phi = vv(v)
    assert (phi[1:] - phi[:-1] >= -1e-9).all()
    # the raw virtual value of this bimodal mixture is not monotone: ironing changed something
    assert float(phi.max() - phi.min()) > 0
