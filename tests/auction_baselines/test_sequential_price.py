"""Sequential price mechanisms: the exact DP reference, strategy-proofness by construction, the
designer and market environments, and the PPO designer on a small budget."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import infozoo
from infozoo.baselines.auction import spm_ppo
from infozoo.baselines.auction.spm_dp import best_sequential_prices, spm_dp
from infozoo.envs.auction.mechanism import utility
from infozoo.envs.auction.metrics import evaluate
from infozoo.envs.auction.settings import uniform
from infozoo.envs.sequential_price.rules import SequentialPriceMechanism, choose
from infozoo.registry import load_setting, make_mechanism


def test_dp_matches_closed_forms():
    # two U[0,1] bidders, per item: last bidder p = 1/2 (1/4), first p = (1 + 1/4)/2 = 5/8 -> 25/64
    table, value = best_sequential_prices(load_setting("additive-2x2-uniform"))
    assert value == pytest.approx(2 * 25 / 64, abs=1e-12)
    np.testing.assert_allclose(table[0, 3], [5 / 8, 5 / 8])
    np.testing.assert_allclose(table[1, 3], [1 / 2, 1 / 2])
    # Yao {3, 7}: post 7 to both bidders, per item 7/2 + 7/4 = 5.25 (below the LP optimum 10.75)
    assert best_sequential_prices(load_setting("additive-2x2-yao"))[1] == pytest.approx(10.5)
    # one unit-demand bidder, 2 items U[0,1]: price 1/sqrt(3), revenue 2/(3 sqrt 3) (grid + quadrature)
    table, value = best_sequential_prices(load_setting("unit-1x2-uniform"))
    assert value == pytest.approx(2 / (3 * math.sqrt(3)), abs=2e-4)
    np.testing.assert_allclose(table[0, 3], 1 / math.sqrt(3), atol=2e-3)


def test_dp_mechanism_earns_its_dp_value():
    for name in ("additive-2x2-uniform", "unit-2x2-uniform"):
        setting = load_setting(name)
        mech = make_mechanism("spm-dp", setting)
        r = evaluate(setting, mech, n=20_000, seed=0, regret_profiles=200)
        assert r["revenue"] == pytest.approx(mech.expected_revenue, abs=4 * r["revenue_stderr"])
        assert r["regret_max"] == 0.0 and r["ir_violation_max"] == 0.0
        assert r["strategyproof_by_construction"]


class HistoryPolicy(torch.nn.Module):
    """A random network of the public history: prices depend on what earlier bidders did."""

    def __init__(self, d, m):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.Tanh(), torch.nn.Linear(16, m))

    def forward(self, obs, t, remaining):
        return torch.tanh(3 * self.net(obs.float())).double()


@pytest.mark.parametrize("name", ["additive-2x3-uniform", "unit-2x3-uniform", "additive-2x2-yao"])
def test_no_misreport_beats_truthful_bidding(name):
    """SP by construction: for history-dependent prices, random and extreme misreports of every
    bidder never raise its true utility; truthful utility is never negative (IR)."""
    setting = load_setting(name)
    n, m = setting.shape
    mech = SequentialPriceMechanism(setting, HistoryPolicy(m + n + 2 * n * m, m))
    g = torch.Generator().manual_seed(1)
    v = setting.sample(256, g)
    honest = mech(v)
    truthful = utility(v, honest)
    assert (truthful >= -1e-12).all()
    low, high = setting.low(), setting.high()
    for i in range(n):
        for trial in range(16):
            bids = v.clone()
            u = torch.rand(256, m, generator=g, dtype=v.dtype)
            if trial % 4 == 0:
                u = (u > 0.5).to(v.dtype)  # corners of the value box
            bids[:, i] = low[i] + u * (high[i] - low[i])
            out = mech(bids)
            assert (utility(v, out)[:, i] <= truthful[:, i] + 1e-12).all()
            # what bidder i reports cannot change what the bidders before it get
            torch.testing.assert_close(out.allocation[:, :i], honest.allocation[:, :i], rtol=0, atol=0)


def test_designer_env_replays_the_mechanism():
    setting = load_setting("unit-2x2-uniform")
    mech = spm_dp(setting)
    env = gym.make("infozoo/SequentialPriceDesigner-v0", setting=setting).unwrapped
    check_env(env, skip_render_check=True)
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            t = env.t
            act = mech.policy(torch.as_tensor(obs[None], dtype=torch.float64), t,
                              torch.as_tensor(env.remaining))[0].numpy()
            obs, rew, done, _, info = env.step(act)
            total += rew
        out = mech(torch.as_tensor(env._values[None]))
        assert total == pytest.approx(float(out.payment.sum()), abs=1e-6)
        np.testing.assert_allclose(info["allocation"], out.allocation[0].numpy())


@pytest.mark.parametrize("name", ["additive-2x3-uniform", "unit-2x2-uniform"])
def test_batched_designer_env_used_for_training_follows_the_same_rules(name):
    setting = load_setting(name)
    mech = spm_dp(setting)
    venv = spm_ppo.DesignerVecEnv(setting, n_envs=64, seed=0)
    obs = venv.reset()
    values, total = torch.as_tensor(venv.values), np.zeros(64)
    for t in range(setting.bidders):
        act = mech.policy(torch.as_tensor(obs, dtype=torch.float64), t,
                          torch.as_tensor(venv.history.remaining))
        obs, rew, dones, infos = venv.step(act.numpy())
        total += rew
    assert dones.all() and "terminal_observation" in infos[0]
    np.testing.assert_allclose(total, mech(values).payment.sum(-1).numpy(), atol=1e-5)
    assert not np.allclose(venv.values, values.numpy())  # a new round of profiles was drawn
    venv.seed(0)
    venv.reset()
    np.testing.assert_array_equal(venv.values, values.numpy())


def test_market_env_with_optimal_bidders_gives_the_same_revenue():
    setting = load_setting("additive-2x2-uniform")
    mech = spm_dp(setting)
    env = infozoo.make("sequential-price-v0", setting=setting)
    for seed in range(10):
        obs, _ = env.reset(seed=seed)
        revenue, utilities = 0.0, np.zeros(2)
        while env.agents:
            t = env.step_count // 2
            price = mech.prices[t, 3] / setting.high()[t].numpy()  # all items unsold: DP prices
            acts = {a: np.zeros(2, dtype=np.int8) for a in env.agents}
            acts["designer"] = (2 * price - 1).astype(np.float32)
            b = obs[f"bidder_{t}"]
            acts[f"bidder_{t}"] = choose(b[None, :2].astype(np.float64), b[None, 4:6].astype(np.float64),
                                         b[None, 2:4].astype(np.float64), False)[0].astype(np.int8)
            obs, rew, terms, _, infos = env.step(acts)
            revenue += rew["designer"]
            utilities += [rew["bidder_0"], rew["bidder_1"]]
        values = torch.as_tensor(env._values[None])
        out = mech(values)
        assert revenue == pytest.approx(float(out.payment.sum()), abs=1e-5)
        np.testing.assert_allclose(utilities, utility(values, out)[0].numpy(), atol=1e-5)
        assert infos["designer"]["revenue"] == pytest.approx(revenue)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        spm_dp(uniform(2, 2, low=-1.0, high=1.0))
    with pytest.raises(ValueError, match="at most 3 items"):
        spm_dp(uniform(2, 4, valuation="unit-demand"))
    env = infozoo.make("sequential-price-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="designer"):
        env.step({"designer": [0.0]})
    with pytest.raises(ValueError, match="profile"):
        spm_ppo.default_config(load_setting("additive-1x2-uniform"), profile="huge")


def test_ppo_designer_learns_trains_deterministically_and_round_trips(tmp_path):
    """Small budget on one bidder x 2 items (DP optimum: price 1/2 per item, revenue 0.5): PPO
    starts at price 1/2 with std 0.18 and must stay within 10% of the optimum; same seed, same
    prices; the checkpoint reproduces the mechanism."""
    setting = load_setting("additive-1x2-uniform")
    cfg = spm_ppo.Config(total_timesteps=2048, n_envs=8, n_steps=64, batch_size=256, n_epochs=2,
                         net_arch=[16], seed=3)
    a, b = spm_ppo.fit(setting, cfg), spm_ppo.fit(setting, cfg)
    v = setting.sample(4096, torch.Generator().manual_seed(0))
    torch.testing.assert_close(a.prices(v), b.prices(v))
    rev = float(a(v).payment.sum(-1).mean())
    assert rev > 0.9 * a.report["dp_revenue"]
    assert a.strategyproof and a.report["train_time"] > 0
    a.save(tmp_path / "spm")
    c = make_mechanism(f"spm-ppo:{tmp_path / 'spm'}", setting)
    torch.testing.assert_close(c(v).payment, a(v).payment)
    torch.testing.assert_close(c.menus(v)[1], a.menus(v)[1])
