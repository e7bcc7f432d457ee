"""History regression and IPPO on small budgets."""

import numpy as np
import pytest
import torch

from infozoo.baselines.decpomdp import regression
from infozoo.baselines.decpomdp.bayes_filter import bayes_floor
from infozoo.envs.decpomdp.histories import collect


@pytest.fixture(scope="module")
def lg_data():
    kw = {"obs_noise": 0.1, "max_cycles": 5}
    return collect("linear-gaussian-v0", 2000, "scripted", seed=0, env_kwargs=kw), \
        collect("linear-gaussian-v0", 500, "scripted", seed=1, env_kwargs=kw)


def test_joint_regression_approaches_the_bayes_floor_and_agents_stay_above_it(lg_data, tmp_path):
    train, test = lg_data
    floor = bayes_floor(test)
    joint = regression.fit(train, regression.Config(mode="joint", hidden=32, epochs=3, batch_size=64, lr=1e-2))
    agent = regression.fit(train, regression.Config(mode="agent", hidden=32, epochs=1, batch_size=64, lr=1e-2))
    j, a = regression.evaluate(joint, test), regression.evaluate(agent, test)
    assert floor["joint_mse"] < 0.02 < 0.3 < floor["agent_mse"]
    assert floor["joint_mse"] * 0.8 < j["mse"] < 0.1  # close to the floor, not below it (up to noise)
    assert a["mse"] > 0.9 * floor["agent_mse"]
    joint.save(tmp_path / "reg")
    again = regression.load(tmp_path / "reg")
    np.testing.assert_allclose(again.reconstruct(test.histories[:4]), joint.reconstruct(test.histories[:4]))
    assert joint.reconstruct(test.histories[:4, :3]).shape == (4, 4)


def test_regression_is_deterministic_under_a_seed(lg_data):
    train, test = lg_data
    small = train.subset(slice(0, 200))
    cfg = regression.Config(mode="joint", hidden=8, epochs=1, seed=3)
    a, b = regression.fit(small, cfg), regression.fit(small, cfg)
    for x, y in zip(a.net.parameters(), b.net.parameters()):
        assert torch.equal(x, y)
    with pytest.raises(ValueError, match="joint"):
        regression.fit(small, regression.Config(mode="both"))


def test_ippo_trains_and_wraps_observations(tmp_path):
    from infozoo.baselines.decpomdp import ippo

    kw = {"rows": 3, "cols": 3, "n_prey": 1, "max_cycles": 5}
    cfg = ippo.Config(env_kwargs=kw, variant="oracle", total_timesteps=512, n_copies=2, n_steps=64,
                      batch_size=128, n_epochs=1, eval_episodes=3)
    pol = ippo.fit(cfg)
    assert pol.report["timesteps"] >= 512
    res = ippo.evaluate(pol, cfg)
    assert np.isfinite(res["return_mean"]) and res["episodes"] == 3
    pol.save(tmp_path / "ippo")
    again = ippo.load(tmp_path / "ippo")
    obs = np.random.default_rng(0).random((4, 11 + 9)).astype(np.float32)
    np.testing.assert_array_equal(again.act(obs), pol.act(obs))


def test_reconstructed_variant_feeds_the_joint_history_to_the_reconstructor():
    from infozoo.baselines.decpomdp import ippo

    seen = []

    class Spy:
        def reconstruct(self, histories):
            seen.append(histories.copy())
            return np.full((histories.shape[0], 2), 7.0)

    cfg = ippo.Config(env_id="dec-tiger-v0", variant="reconstructed", env_kwargs={"max_cycles": 3})
    env = ippo.make_env(cfg, Spy())
    obs, _ = env.reset(seed=0)
    assert obs["agent_0"].shape == (4,) and obs["agent_0"][2:].tolist() == [7.0, 7.0]
    env.step({"agent_0": 1, "agent_1": 0})
    assert seen[-1].shape == (1, 2, 2, 5)  # [B, t+1, n, F]
    np.testing.assert_array_equal(seen[-1][0, 1, :, 2:], np.eye(3)[[1, 0]])  # previous actions one-hot
    with pytest.raises(ValueError, match="reconstruct"):
        ippo.make_env(cfg, object())


def test_a_joint_history_regression_plugs_into_the_reconstructed_variant(lg_data):
    from infozoo.baselines.decpomdp import ippo

    train, _ = lg_data
    model = regression.fit(train.subset(slice(0, 100)), regression.Config(hidden=8, epochs=1))
    cfg = ippo.Config(env_id="linear-gaussian-v0", variant="reconstructed", env_kwargs=train.meta["env_kwargs"])
    env = ippo.make_env(cfg, model)
    obs, _ = env.reset(seed=0)
    for _ in range(2):
        obs, *_ = env.step({a: np.zeros(4, np.float32) for a in env.agents})
    assert obs["agent_0"].shape == (2 + 4,)
    hist = np.stack(env._rows)[None]
    np.testing.assert_allclose(obs["agent_1"][2:], model.reconstruct(hist)[0], rtol=1e-6)
