"""Data-market settings, experiments and bad input: clear errors for each kind of mistake."""

import pytest
import torch

from infozoo.envs.data_market import settings as S
from infozoo.envs.data_market.experiments import (
    check_experiment,
    check_prior,
    make_obedient,
    obedience_violation,
    value,
)
from infozoo.envs.data_market.theory import Menu
from infozoo.registry import load_setting, make_mechanism


@pytest.mark.parametrize("name", sorted(S.NAMED_SETTINGS))
def test_named_settings_round_trip_through_json(name):
    setting = S.NAMED_SETTINGS[name]()
    assert S.from_dict(setting.to_dict()) == setting
    x = setting.sample(64, torch.Generator().manual_seed(0))
    assert x.shape == (64, setting.buyers, setting.type_dim)
    assert torch.allclose(setting.clip(x), x, atol=1e-12)  # truthful types are already in the type space


def test_issue_json_examples_load():
    one = load_setting({"domain": "data-market", "buyers": 1, "states": 2,
                        "prior": {"kind": "beta-mixture", "weights": [0.5, 0.5], "a": [8, 60], "b": [30, 30]}})
    two = load_setting({"domain": "data-market", "buyers": 2, "states": 2, "common_prior": [0.5, 0.5],
                        "externality": 0.5, "incentive": "ex-post", "values": {"kind": "exponential", "rate": 1.0}})
    assert one.prior.kind == "beta-mixture" and two.values.kind == "exponential"
    mean = float(one.sample(50_000, torch.Generator().manual_seed(0))[:, 0, 0].mean())
    assert abs(mean - (0.5 * 8 / 38 + 0.5 * 60 / 90)) < 5e-3  # Beta mixture mean


@pytest.mark.parametrize("bad, match", [
    ({"buyers": 2, "common_prior": [0.6, 0.6], "values": {"kind": "uniform", "low": 0, "high": 1}}, "simplex"),
    ({"buyers": 2, "common_prior": [1.2, -0.2], "values": {"kind": "uniform", "low": 0, "high": 1}}, "simplex"),
    ({"buyers": 1, "prior": {"kind": "discrete", "support": [1.2, 0.5], "probs": [0.5, 0.5]}}, "simplex"),
    ({"buyers": 1, "prior": {"kind": "discrete", "support": [0.2, 0.7], "probs": [0.7, 0.7]}}, "simplex"),
    ({"buyers": 1, "prior": {"kind": "gaussian"}}, "unknown prior distribution 'gaussian'.*valid kinds"),
    ({"buyers": 2, "common_prior": [0.5, 0.5], "values": {"kind": "pareto"}}, "unknown value distribution"),
    ({"buyers": 1, "prior": {"kind": "beta", "a": -1, "b": 2}}, "positive"),
    ({"buyers": 1, "prior": {"kind": "uniform"}, "colour": 1}, "unknown key.*colour"),
    ({"buyers": 2, "common_prior": [0.5, 0.5], "externality": -1,
      "values": {"kind": "uniform", "low": 0, "high": 1}}, "externality"),
    ({"buyers": 2, "common_prior": [0.5, 0.5], "incentive": "dominant",
      "values": {"kind": "uniform", "low": 0, "high": 1}}, "valid: ex-post, bayesian"),
    ({"buyers": 1, "states": 3, "prior": {"kind": "uniform"}}, "two states"),
])
def test_bad_settings_raise_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        S.from_dict({"domain": "data-market", **bad})


def test_non_stochastic_experiments_are_rejected():
    with pytest.raises(ValueError, match="row-stochastic.*sums to 1.1"):
        check_experiment(torch.tensor([[0.6, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="negative probability"):
        check_experiment(torch.tensor([[1.2, -0.2], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="NaN"):
        check_experiment(torch.tensor([[float("nan"), 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="row-stochastic"):
        Menu(torch.tensor([[[0.5, 0.4], [0.0, 1.0]]], dtype=torch.float64), torch.tensor([0.1], dtype=torch.float64),
             torch.eye(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="simplex"):
        check_prior(torch.tensor([0.7, 0.7]))


def test_unknown_mechanism_and_wrong_domain_name_valid_choices():
    setting = load_setting("dm-1buyer-uniform")
    with pytest.raises(ValueError, match="theory"):
        make_mechanism("no-such-mechanism", setting)
    with pytest.raises(ValueError, match="data-market"):
        make_mechanism("vcg", setting)


def test_value_obedience_and_relabelling():
    payoff = torch.eye(2, dtype=torch.float64)
    theta = torch.tensor([0.5, 0.5], dtype=torch.float64)
    full = torch.eye(2, dtype=torch.float64)
    swapped = full.flip(-1)  # signals swapped: same information, recommendations wrong
    assert abs(float(value(theta, full, payoff)) - 0.5) < 1e-12
    assert abs(float(value(theta, swapped, payoff)) - 0.5) < 1e-12
    assert float(obedience_violation(theta, full, payoff)) == 0.0
    assert abs(float(obedience_violation(theta, swapped, payoff)) - 1.0) < 1e-12
    fixed = make_obedient(theta, swapped, payoff)
    assert torch.allclose(fixed, full) and float(obedience_violation(theta, fixed, payoff)) == 0.0
