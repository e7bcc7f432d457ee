"""RL bidders (parameter-shared PPO through the SB3 adapter) as a strategy-proofness probe, on small
budgets: in first price, learned bids shade well below value and shading pays; against VCG no
learned strategy beats truthful bidding against the same opponents."""

import pytest

from infozoo.baselines.auction.rl_bidders import Config, evaluate_bidders, train
from infozoo.envs.auction.settings import uniform

BUDGET = Config(total_timesteps=8192, n_copies=8, n_steps=32, batch_size=256, n_epochs=10, seed=0)
SETTING = uniform(2, 1, name="additive-2x1-uniform")  # BNE of first price: b(v) = v / 2


def test_first_price_bidders_learn_to_shade():
    bidders = train(SETTING, "first-price", BUDGET)
    r = evaluate_bidders(bidders, "first-price", n=4000)
    assert r["bid_value_slope"] < 0.8 and r["bid_value_ratio"] < 0.8  # clearly below 1 (BNE: 0.5)
    assert r["truthful_utility"] == pytest.approx(0.0, abs=1e-12)  # paying your value earns nothing
    assert r["deviation_gain"] > 0.05 + 3 * r["deviation_gain_stderr"]


def test_vcg_bidders_gain_nothing_over_truthful_bidding():
    bidders = train(SETTING, "vcg", BUDGET)
    r = evaluate_bidders(bidders, "vcg", n=4000)
    assert r["deviation_gain_max"] <= 1e-12  # truthful is dominant: never worse, profile by profile
    assert abs(r["learned_utility"] - r["truthful_utility"]) < 0.02  # learned play is near-truthful
    assert r["bid_value_slope"] > 0.8
