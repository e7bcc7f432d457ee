"""Agents' actions are checked, never coerced: a wrong type, shape or range raises a ValueError that
names the agent and the expected form."""

import importlib.util

import numpy as np
import pytest

import infozoo

DISCRETE = ["dec-tiger-v0", "sensor-grid-v0", "spread-po-v0"]
BAD_DISCRETE = [1.7, "1", float("nan"), np.array([1, 2]), True, None, -1, 99]


def _env(env_id):
    if env_id == "spread-po-v0" and importlib.util.find_spec("mpe2") is None:
        pytest.skip("spread-po-v0 needs mpe2")
    return infozoo.make(env_id)


@pytest.mark.parametrize("env_id", DISCRETE)
@pytest.mark.parametrize("bad", BAD_DISCRETE, ids=repr)
def test_discrete_actions_are_not_rounded_or_parsed(env_id, bad):
    """1.7 and "1" used to become action 1; NaN or an array gave raw errors without the agent."""
    env = _env(env_id)
    env.reset(seed=0)
    actions = {a: 0 for a in env.agents}
    actions["agent_1"] = bad
    with pytest.raises(ValueError, match=r"action of agent_1 must be an integer in 0\.\.\d"):
        env.step(actions)


@pytest.mark.parametrize("env_id", DISCRETE)
def test_integer_actions_of_any_integer_type_are_accepted(env_id):
    env = _env(env_id)
    env.reset(seed=0)
    kinds = [1, np.int64(0), np.array(2, dtype=np.int32)]
    env.step({a: kinds[i % 3] for i, a in enumerate(env.agents)})


@pytest.mark.parametrize("bad", [1.7, "1", float("nan"), 5, np.array([0, 1])], ids=repr)
def test_data_market_action_phase_refuses_non_integers(bad):
    env = infozoo.make("data-market-v0", setting="dm-2buyers-uniform-a0.5")
    obs, _ = env.reset(seed=0)
    env.step({a: {"report": o[:1]} for a, o in obs.items()})
    with pytest.raises(ValueError, match=r"action of buyer_1 must be an integer in 0\.\.1"):
        env.step({"buyer_0": {"action": 0}, "buyer_1": {"action": bad}})


@pytest.mark.parametrize("bad", [["0.5"], "0.5", [None], [[0.5]]], ids=repr)
def test_reports_and_bids_must_be_numbers(bad):
    env = infozoo.make("data-market-v0", setting="dm-2buyers-uniform-a0.5")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="report of buyer_0 must be a type vector of shape"):
        env.step({"buyer_0": {"report": bad}, "buyer_1": {"report": [0.5]}})
    env = infozoo.make("auction-v0", setting="additive-1x2-uniform")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="bid of bidder_0 must be a bid vector of shape"):
        env.step({"bidder_0": bad})


@pytest.mark.parametrize("bad", [[np.nan, 1], [7, 0], [-3, 1], [0.5, 1], [1, 1, 0], "11", [None, 1]], ids=repr)
def test_sequential_price_bidders_buy_only_with_zeros_and_ones(bad):
    """NaN, 7 or -3 used to be read as buy / do not buy."""
    env = infozoo.make("sequential-price-v0", setting="additive-2x2-uniform")
    env.reset(seed=0)
    env.step({a: env.action_space(a).sample() for a in env.agents})  # the designer posts prices
    actions = {a: env.action_space(a).sample() for a in env.agents}
    actions["bidder_0"] = bad
    with pytest.raises(ValueError, match=r"action of bidder_0 must be 2 zeros/ones"):
        env.step(actions)


def test_sequential_price_accepts_bools_and_checks_the_designer():
    env = infozoo.make("sequential-price-v0", setting="additive-2x2-uniform")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action of designer must be 2 finite price fractions"):
        env.step({"designer": ["0.5", "0.5"], "bidder_0": [0, 0], "bidder_1": [0, 0]})
    env.step({"designer": np.zeros(2), "bidder_0": [0, 0], "bidder_1": [0, 0]})
    env.step({"designer": np.zeros(2), "bidder_0": np.array([True, False]), "bidder_1": [0, 0]})
