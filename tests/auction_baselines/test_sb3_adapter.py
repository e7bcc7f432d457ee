"""The PettingZoo-parallel -> SB3 VecEnv adapter: per-copy seeding, parameter sharing, auto-reset,
reproducible PPO under ``PPO(seed=...)``, and clear errors for unsupported environments."""

import numpy as np
import pytest
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv
from stable_baselines3 import PPO

import infozoo
from infozoo.baselines.sb3 import PettingZooVecEnv


class ToyEnv(ParallelEnv):
    """Two agents, Discrete(2) actions, random observations, ``length`` steps per episode;
    ``early_exit`` makes agent_1 terminate one step before agent_0 (unsupported)."""

    metadata = {"name": "toy_v0"}

    def __init__(self, length=3, early_exit=False, mixed_spaces=False):
        self.possible_agents = ["agent_0", "agent_1"]
        self.length, self.early_exit = length, early_exit
        self._obs = {a: spaces.Box(0, 1, (3,), np.float32) for a in self.possible_agents}
        if mixed_spaces:
            self._obs["agent_1"] = spaces.Box(0, 1, (4,), np.float32)
        self.rng = np.random.default_rng()

    def observation_space(self, agent):
        return self._obs[agent]

    def action_space(self, agent):
        return spaces.Discrete(2)

    def _o(self):
        return {a: self.rng.random(self._obs[a].shape).astype(np.float32) for a in self.agents}

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.agents, self.t = list(self.possible_agents), 0
        return self._o(), {a: {} for a in self.agents}

    def step(self, actions):
        assert all(isinstance(actions[a], int) for a in self.agents)
        self.t += 1
        obs = self._o()
        rew = {a: float(actions[a]) for a in self.agents}
        end = self.t >= self.length
        terms = {a: end or (self.early_exit and a == "agent_1" and self.t == self.length - 1) for a in self.agents}
        truncs = {a: False for a in self.agents}
        if end:
            self.agents = []
        return obs, rew, terms, truncs, {a: {} for a in obs}


def _auction():
    return infozoo.make("auction-v0", setting="additive-2x2-uniform", mechanism="first-price")


def test_every_copy_and_agent_sees_its_own_observation():
    venv = PettingZooVecEnv(_auction, n_copies=4, seed=0)
    assert venv.num_envs == 8
    obs = venv.reset()
    assert obs.shape == (8, 2)
    assert len({tuple(np.round(o, 6)) for o in obs}) == 8  # no two copies/agents share a draw
    obs2, _, dones, infos = venv.step(obs)  # one-round auctions: every copy ends and auto-resets
    assert dones.all()
    assert all("terminal_observation" in info for info in infos)
    np.testing.assert_array_equal(np.stack([info["terminal_observation"] for info in infos]), obs)
    assert len({tuple(np.round(o, 6)) for o in obs2}) == 8
    assert not np.allclose(obs2, obs)


def test_copies_are_seeded_with_seed_plus_k():
    venv = PettingZooVecEnv(_auction, n_copies=3, seed=5)
    obs = venv.reset()
    for k in range(3):
        ref, _ = _auction().reset(seed=5 + k)
        np.testing.assert_array_equal(obs[2 * k:2 * k + 2], np.stack([ref["bidder_0"], ref["bidder_1"]]))
    # same seed, same stream (also after auto-resets); a later seed() re-seeds at the next reset
    again = PettingZooVecEnv(_auction, n_copies=3, seed=5)
    np.testing.assert_array_equal(again.reset(), obs)
    np.testing.assert_array_equal(again.step(obs)[0], venv.step(obs)[0])
    venv.seed(5)
    np.testing.assert_array_equal(venv.reset(), obs)


def test_ppo_with_the_same_seed_is_reproducible():
    def train(seed):
        venv = PettingZooVecEnv(_auction, n_copies=2)
        model = PPO("MlpPolicy", venv, n_steps=8, batch_size=16, n_epochs=1, seed=seed, device="cpu",
                    policy_kwargs={"net_arch": [8]})
        model.learn(32)
        return torch.cat([p.detach().flatten() for p in model.policy.parameters()]), model.rollout_buffer

    (a, buf_a), (b, buf_b), (c, _) = train(3), train(3), train(4)
    assert torch.equal(a, b)
    np.testing.assert_array_equal(buf_a.observations, buf_b.observations)
    np.testing.assert_array_equal(buf_a.actions, buf_b.actions)
    assert not torch.equal(a, c)


def test_discrete_actions_and_multi_step_episodes():
    venv = PettingZooVecEnv(lambda: ToyEnv(length=3), n_copies=2, seed=0)
    obs = venv.reset()
    for t in range(1, 7):
        obs, rew, dones, infos = venv.step(np.array([1, 0, 1, 0]))
        np.testing.assert_array_equal(rew, [1, 0, 1, 0])
        assert dones.all() == (t % 3 == 0)
        assert all(("terminal_observation" in i) == (t % 3 == 0) for i in infos)
    model = PPO("MlpPolicy", venv, n_steps=4, batch_size=8, n_epochs=1, seed=0, device="cpu")
    model.learn(8)


def test_agents_leaving_mid_episode_are_rejected():
    venv = PettingZooVecEnv(lambda: ToyEnv(length=3, early_exit=True), n_copies=1, seed=0)
    venv.reset()
    venv.step(np.array([0, 0]))
    with pytest.raises(ValueError, match="fixed set of agents"):
        venv.step(np.array([0, 0]))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="same observation and action spaces"):
        PettingZooVecEnv(lambda: ToyEnv(mixed_spaces=True), n_copies=1)
    env = ToyEnv()
    with pytest.raises(ValueError, match="new environment"):
        PettingZooVecEnv(lambda: env, n_copies=2)
    with pytest.raises(ValueError, match="n_copies"):
        PettingZooVecEnv(ToyEnv, n_copies=0)
