"""data-market-v0: the two-phase episode, rewards, infos, state and bad actions."""

import numpy as np
import pytest

import infozoo


def _play(env, seed, obey=True):
    obs, _ = env.reset(seed=seed)
    d = env.setting.type_dim
    obs, rewards, terms, _, infos = env.step({a: {"report": o[:d], "action": 0} for a, o in obs.items()})
    assert not any(terms.values()) and all(r == 0.0 for r in rewards.values())
    k = env.setting.states
    acts = {a: {"report": o[:d], "action": int(o[d + 2:d + 2 + k].argmax()) if obey else 0} for a, o in obs.items()}
    return env.step(acts)


def test_two_type_market_pays_the_theory_prices():
    env = infozoo.make("data-market-v0", setting="dm-1buyer-two-types", mechanism="theory")
    pays = []
    for seed in range(40):
        _, rewards, terms, _, infos = _play(env, seed)
        assert all(terms.values()) and env.agents == []
        info = infos["buyer_0"]
        pays.append(round(info["payment"], 6))
        assert set(info) >= {"state", "signal", "experiment", "payment", "revenue", "expected_gain"}
        assert abs(info["expected_gain"] - info["payment"]) < 1e-6  # IR binds for both types
    assert set(pays) == {0.16, 0.3}


def test_obedient_buyers_earn_the_value_of_information_on_average():
    env = infozoo.make("data-market-v0", setting="dm-2buyers-uniform-a0.5", mechanism="theory")
    gaps = []
    for seed in range(300):
        _, rewards, _, _, infos = _play(env, seed)
        for a in env.possible_agents:
            gaps.append(rewards[a] - (infos[a]["expected_gain"] - infos[a]["payment"]))
    assert abs(np.mean(gaps)) < 0.08  # realised minus expected payoff averages out


def test_state_holds_true_state_and_types():
    env = infozoo.make("data-market-v0", setting="dm-2buyers-uniform-a0.5")
    obs, _ = env.reset(seed=3)
    st = env.state()
    assert st.shape == env.state_space.shape and st[:2].sum() == 0  # state not drawn yet
    assert np.allclose(st[2:], [obs["buyer_0"][0], obs["buyer_1"][0]])
    _play(env, 3)
    assert env.state()[:2].sum() == 1


def test_bad_reports_and_actions_raise():
    env = infozoo.make("data-market-v0", setting="dm-2buyers-uniform-a0.5")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="buyer_1.*NaN"):
        env.step({"buyer_0": {"report": [0.5]}, "buyer_1": {"report": [float("nan")]}})
    with pytest.raises(ValueError, match="shape"):
        env.step({"buyer_0": {"report": [0.5, 0.2]}, "buyer_1": {"report": [0.5]}})
    env.step({"buyer_0": {"report": [7.0]}, "buyer_1": {"report": [0.5]}})  # clipped, not an error
    with pytest.raises(ValueError, match="action of buyer_0"):
        env.step({"buyer_0": {"action": 5}, "buyer_1": {"action": 0}})


def test_off_simplex_report_is_projected_and_flagged():
    env = infozoo.make("data-market-v0", setting="dm-1buyer-uniform")
    env.reset(seed=0)
    _, _, _, _, infos = env.step({"buyer_0": {"report": np.array([0.9, 0.9]), "action": 0}})
    assert infos["buyer_0"]["clipped"] is True
