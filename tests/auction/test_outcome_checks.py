"""Environments and ``evaluate`` check what a mechanism returns (shapes, finiteness, range,
feasibility within 1e-9); auction settings refuse negative values; truthful float bids are exact."""

import dataclasses
import json

import numpy as np
import pytest
import torch

import infozoo
from infozoo.envs.auction.mechanism import Outcome
from infozoo.envs.auction.metrics import evaluate
from infozoo.envs.data_market.experiments import SchemeOutcome
from infozoo.registry import load_setting


class Fixed:
    """A custom auction mechanism returning ``alloc(B)`` and ``pay(B)``."""

    strategyproof = False

    def __init__(self, alloc, pay):
        self.alloc, self.pay = alloc, pay

    def __call__(self, bids):
        return Outcome(self.alloc(bids.shape[0]), self.pay(bids.shape[0]))


BROADCAST = Fixed(lambda B: torch.tensor([1.0, 0.0], dtype=torch.float64).view(1, 2, 1).expand(B, 2, 1),
                  lambda B: torch.zeros(B, 2, dtype=torch.float64))
NAN_PAY = Fixed(lambda B: torch.zeros(B, 2, 2, dtype=torch.float64), lambda B: torch.full((B, 2), float("nan")))
OVER = Fixed(lambda B: torch.ones(B, 2, 2, dtype=torch.float64), lambda B: torch.zeros(B, 2, dtype=torch.float64))
NEGATIVE = Fixed(lambda B: torch.full((B, 2, 2), -0.5, dtype=torch.float64), lambda B: torch.zeros(B, 2))


@pytest.mark.parametrize("mech,match", [
    (BROADCAST, r"allocation \(1, 2, 1\).*expected allocation \[1, 2, 2\]"),
    (NAN_PAY, "NaN or infinite payment for bidder_0"),
    (OVER, "over-allocated item 0"),
    (NEGATIVE, "probability -0.5"),
])
def test_auction_env_refuses_invalid_mechanism_outputs(mech, match):
    """auction-v0 used to broadcast a [B, n, 1] allocation on two items (bidder_0 credited both
    items' values), turn NaN payments into NaN rewards, and let over-allocation pass."""
    env = infozoo.make("auction-v0", setting="additive-2x2-uniform", mechanism=mech)
    obs, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(obs)


def test_unit_demand_feasibility_and_the_tolerance_boundary():
    one_each = lambda eps: Fixed(lambda B: torch.tensor([[0.5 + eps, 0.5], [0.5, 0.5]], dtype=torch.float64)  # noqa: E731
                                 .expand(B, 2, 2), lambda B: torch.zeros(B, 2, dtype=torch.float64))
    for eps, ok in [(0.0, True), (1e-10, True), (1e-8, False)]:
        env = infozoo.make("auction-v0", setting="unit-2x2-uniform", mechanism=one_each(eps))
        obs, _ = env.reset(seed=0)
        if ok:
            env.step(obs)
        else:
            with pytest.raises(ValueError, match="unit-demand bidder_0|over-allocated item 0"):
                env.step(obs)


@pytest.mark.parametrize("mech,match", [(BROADCAST, "expected allocation"), (NAN_PAY, "NaN"),
                                        (NEGATIVE, "probabilities in")])
def test_evaluate_refuses_invalid_outputs_instead_of_reporting_revenue(mech, match):
    with pytest.raises(ValueError, match=match):
        evaluate(load_setting("additive-2x2-uniform"), mech, n=64, regret_profiles=4, regret_restarts=1,
                 regret_steps=1)


def test_evaluate_measures_over_allocation_rather_than_hiding_it():
    r = evaluate(load_setting("additive-2x2-uniform"), OVER, n=64, regret_profiles=4, regret_restarts=1,
                 regret_steps=1)
    assert r["over_allocation_max"] == pytest.approx(1.0)


class Scheme:
    strategyproof = False

    def __init__(self, exp, pay):
        self.exp, self.pay = exp, pay

    def __call__(self, reports):
        B, n, _ = reports.shape
        return SchemeOutcome(self.exp.expand(B, n, 2, 2).clone(), self.pay.expand(B, n).clone())


@pytest.mark.parametrize("exp,pay,match", [
    (torch.full((2, 2), 0.3, dtype=torch.float64), torch.zeros(1), "not row-stochastic"),
    (torch.tensor([[1 + 1e-8, -1e-8], [0.0, 1.0]], dtype=torch.float64), torch.zeros(1), "off by 1e-08"),
    (torch.eye(2, dtype=torch.float64), torch.tensor([float("nan")]), "NaN or infinite price for buyer_0"),
])
def test_data_market_env_refuses_non_stochastic_experiments_and_nan_prices(exp, pay, match):
    """data-market-v0 used to renormalise any non-negative matrix (0.3 everywhere became 0.5)."""
    env = infozoo.make("data-market-v0", setting="dm-1buyer-uniform", mechanism=Scheme(exp, pay))
    obs, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step({a: {"report": o[:2], "action": 0} for a, o in obs.items()})


def test_data_market_env_accepts_exact_and_trained_experiments(tmp_path):
    exp = torch.tensor([[1 - 1e-10, 1e-10], [0.0, 1.0]], dtype=torch.float64)  # within 1e-9
    env = infozoo.make("data-market-v0", setting="dm-1buyer-uniform", mechanism=Scheme(exp, torch.zeros(1)))
    obs, _ = env.reset(seed=0)
    env.step({a: {"report": o[:2], "action": 0} for a, o in obs.items()})
    from infozoo.solvers.data_market_net import train

    s = load_setting("dm-1buyer-two-types")
    cfg = dataclasses.replace(train.default_config(s, seed=0), steps=30, restarts=1)
    train.fit(s, cfg).save(tmp_path / "net")
    env = infozoo.make("data-market-v0", setting=s, mechanism=f"data-market-net:{tmp_path / 'net'}")
    for seed in range(5):  # float32-trained menus are exported exactly row-stochastic
        obs, _ = env.reset(seed=seed)
        env.step({a: {"report": o[:2], "action": 0} for a, o in obs.items()})


@pytest.mark.parametrize("values,match", [
    ({"kind": "uniform", "low": -2, "high": -0.5}, "non-negative"),
    ({"kind": "uniform", "low": [[0, -1]], "high": 1}, r"non-negative.*\(0, 1\)"),
    ({"kind": "discrete", "support": [-1, 3], "probs": [0.5, 0.5]}, "non-negative"),
    ({"kind": "discrete", "support": [1, 3], "probs": [float("nan"), 1.0]}, "probs"),
])
def test_auction_settings_refuse_negative_values(tmp_path, values, match):
    """VCG used to sell to bidders with negative values and report revenue -0.666 without a word."""
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"domain": "auction", "bidders": 1, "items": 2, "valuation": "additive",
                                "values": values}))
    with pytest.raises(ValueError, match=match):
        load_setting(str(path))


def test_truthful_bids_on_a_discrete_support_are_exact():
    """With float32 spaces, values 0.1 and 0.3 came back as 0.1000000015 and 0.3000000119: 186 of 400
    truthful bids counted as clipped and ties paid a tiny negative utility under VCG."""
    from infozoo.envs.auction.settings import AuctionSetting, DiscreteValues

    s = AuctionSetting(2, 2, "additive", DiscreteValues((0.1, 0.3), (0.5, 0.5)))
    env = infozoo.make("auction-v0", setting=s, mechanism="vcg")
    clipped, worst = 0, np.inf
    for episode in range(400):
        obs, _ = env.reset(seed=episode)
        assert all(env.observation_space(a).contains(o) for a, o in obs.items())
        _, rewards, _, _, infos = env.step(obs)
        clipped += sum(info["clipped"] for info in infos.values())
        worst = min(worst, *rewards.values())
    assert clipped == 0 and worst >= 0.0
