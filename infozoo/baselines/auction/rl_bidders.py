"""RL bidders: PPO bidders trained in ``auction-v0`` against a fixed mechanism — an empirical probe
of strategy-proofness.

Every bidder of ``auction-v0`` observes its own values v_i and submits a bid b_i; its reward is
u_i = <v_i, x_i(b)> - p_i(b). One Gaussian policy b_i ~ pi_theta(. | v_i) is shared by all bidders
(parameter sharing through ``infozoo.baselines.sb3.PettingZooVecEnv``: each bidder of each env
copy is one SB3 sub-env) and trained by PPO on the bidders' own rewards while they all play it —
self-play, so a fixed point is a symmetric equilibrium in the policy class. Observations and
actions are normalised: the policy sees (v_i - low_i)/(high_i - low_i) and its action a in
[-1, 1]^m bids b_i = low_i + (a + 1)/2 (high_i - low_i).

What it shows (``probe``):
- **first price**, n bidders i.i.d. U[0,1], one item: the symmetric Bayes-Nash equilibrium is
  b(v) = (n-1)/n v, so learned bids shade to about v/2 for two bidders, and a bidder earns more
  by shading than by bidding its value (truthful utility is 0);
- **strategy-proof mechanisms** (VCG, GemNet, affine maximizers, sequential prices): truthful
  bidding is dominant, so no learned strategy earns more than bidding truthfully against the same
  opponents; on every profile the paired gain u_i(learned_i, L_-i) - u_i(v_i, L_-i) is <= 0 and
  learned utility is within noise of truthful utility.

Reported (``evaluate_bidders``, on fresh profiles, deterministic mean bids):
``bid_value_ratio`` (mean of b_ij / v_ij over values above 10% of the range), ``bid_value_slope``
(least squares b = k v); for bidder 0 against opponents who play the learned policy:
``learned_utility`` (bidder 0 plays it too) and ``truthful_utility`` (bidder 0 bids its values),
their paired difference ``deviation_gain`` with standard errors; and, for context,
``all_learned_utility`` / ``all_truthful_utility`` (mean utility when everyone plays the learned
policy / bids truthfully — under VCG, bidders who all shade can earn more together than truthful
ones, which is no violation of strategy-proofness: it is the unilateral gain that must vanish).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv

from infozoo.core.seeding import torch_generator
from infozoo.core.torch_utils import set_threads
from infozoo.envs.auction.mechanism import utility
from infozoo.envs.auction.metrics import run_chunked
from infozoo.envs.auction.settings import AuctionSetting


@dataclass
class Config:
    """PPO bidders' hyper-parameters (SB3 names)."""

    total_timesteps: int = 60_000  # bidder decisions (sub-env steps) to train on
    n_copies: int = 16  # auction copies; sub-envs = n_copies * bidders
    n_steps: int = 32  # rollout length per sub-env between updates
    batch_size: int = 256  # PPO minibatch
    n_epochs: int = 10  # passes over each rollout
    learning_rate: float = 1e-3  # Adam step size
    log_std_init: float = -1.0  # initial log std of the normalised bids
    ent_coef: float = 0.0  # entropy bonus
    net_arch: list[int] = field(default_factory=lambda: [32, 32])  # hidden layers
    seed: int = 0  # seeds PPO and the auction copies (seed + k)
    threads: int | None = 1  # torch CPU threads (None/0: torch default)


class NormalizedAuction(ParallelEnv):
    """``auction-v0`` with observations scaled to [0, 1] and bids to [-1, 1] (see the module doc)."""

    metadata = {"name": "normalized_auction", "render_modes": [], "is_parallelizable": True}

    def __init__(self, setting: AuctionSetting, mechanism: Any) -> None:
        from infozoo.envs.auction.env import AuctionEnv

        self.env = AuctionEnv(setting=setting, mechanism=mechanism)
        self.possible_agents = list(self.env.possible_agents)
        m = setting.items
        self.low, self.high = setting.low().numpy(), setting.high().numpy()
        self._obs = spaces.Box(0.0, 1.0, (m,), np.float32)
        self._act = spaces.Box(-1.0, 1.0, (m,), np.float32)
        self.render_mode = None

    @property
    def agents(self) -> list[str]:  # type: ignore[override]
        return self.env.agents

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs

    def action_space(self, agent: str) -> spaces.Box:
        return self._act

    def _scale(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {a: ((o - self.low[i]) / (self.high[i] - self.low[i])).astype(np.float32)
                for i, a in enumerate(self.possible_agents) if a in obs for o in [obs[a]]}

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs, infos = self.env.reset(seed=seed, options=options)
        return self._scale(obs), infos

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        bids = {a: self.low[i] + (np.clip(actions[a], -1, 1) + 1) / 2 * (self.high[i] - self.low[i])
                for i, a in enumerate(self.possible_agents) if a in actions}
        obs, rew, term, trunc, infos = self.env.step(bids)
        return self._scale(obs), rew, term, trunc, infos


@dataclass
class LearnedBidders:
    """The shared learned bidding policy: ``bids(values [B, n, m]) -> bids [B, n, m]`` (mean)."""

    setting: AuctionSetting
    policy: Any  # stable_baselines3 ActorCriticPolicy
    config: Config
    report: dict[str, Any] = field(default_factory=dict)

    def bids(self, values: torch.Tensor) -> torch.Tensor:
        low, high = self.setting.low(values.dtype), self.setting.high(values.dtype)
        x = ((values - low) / (high - low)).reshape(-1, self.setting.items).float()
        with torch.no_grad():
            a = self.policy._predict(x, deterministic=True).to(values.dtype).clamp(-1, 1)
        return low + (a.reshape(values.shape) + 1) / 2 * (high - low)


def train(setting: Any, mechanism: Any = "first-price", config: Config | None = None) -> LearnedBidders:
    """Train parameter-shared PPO bidders in ``auction-v0`` against ``mechanism`` (object or name)."""
    from stable_baselines3 import PPO

    from infozoo.baselines.sb3 import PettingZooVecEnv, ProgressCallback
    from infozoo.registry import load_setting, make_mechanism

    config = config or Config()
    setting = load_setting(setting)
    mech = make_mechanism(mechanism, setting)
    set_threads(config.threads)
    t0 = time.perf_counter()
    venv = PettingZooVecEnv(lambda: NormalizedAuction(setting, mech), config.n_copies, seed=config.seed)
    model = PPO("MlpPolicy", venv, n_steps=config.n_steps, batch_size=config.batch_size,
                n_epochs=config.n_epochs, learning_rate=config.learning_rate, gamma=1.0, gae_lambda=1.0,
                ent_coef=config.ent_coef, seed=config.seed, device="cpu", verbose=0,
                policy_kwargs={"net_arch": list(config.net_arch), "log_std_init": config.log_std_init})
    model.learn(config.total_timesteps, callback=ProgressCallback(config.total_timesteps, "RL bidders"))
    venv.close()
    report = {"train_time": time.perf_counter() - t0, "timesteps": config.total_timesteps,
              "mechanism": getattr(mech, "name", str(mechanism)), "config": asdict(config)}
    return LearnedBidders(setting, model.policy.to("cpu").eval(), config, report)


def evaluate_bidders(bidders: LearnedBidders, mechanism: Any, n: int = 20_000, seed: int = 1) -> dict[str, Any]:
    """Learned vs truthful bidding against ``mechanism`` on ``n`` fresh profiles (see module doc)."""
    from infozoo.registry import make_mechanism

    s = bidders.setting
    mech = make_mechanism(mechanism, s)
    v = s.sample(n, torch_generator(seed))
    b = bidders.bids(v)
    low, high = s.low(v.dtype), s.high(v.dtype)
    keep = v >= low + 0.1 * (high - low)
    ratio = (b / v.clamp(min=1e-12))[keep]
    u_learned = utility(v, run_chunked(mech, b))  # [n, bidders]
    u_truthful = utility(v, run_chunked(mech, v))
    dev = b.clone()
    dev[:, 0] = v[:, 0]  # bidder 0 bids truthfully, the others keep the learned strategy
    gain = u_learned[:, 0] - utility(v, run_chunked(mech, dev))[:, 0]  # paired, per profile

    def se(x: torch.Tensor) -> float:
        return float(x.std() / math.sqrt(x.numel()))

    u_dev = utility(v, run_chunked(mech, dev))[:, 0]
    return {
        "bid_value_ratio": float(ratio.mean()),
        "bid_value_slope": float((b * v).sum() / (v * v).sum()),
        "learned_utility": float(u_learned[:, 0].mean()), "learned_utility_stderr": se(u_learned[:, 0]),
        "truthful_utility": float(u_dev.mean()), "truthful_utility_stderr": se(u_dev),
        "deviation_gain": float(gain.mean()), "deviation_gain_stderr": se(gain),
        "deviation_gain_max": float(gain.max()),
        "all_learned_utility": float(u_learned.mean()), "all_truthful_utility": float(u_truthful.mean()),
        "n": n, "mechanism": getattr(mech, "name", str(mechanism)),
    }


def probe(setting: Any, mechanism: Any = "first-price", config: Config | None = None,
          n: int = 20_000) -> dict[str, Any]:
    """Train RL bidders against ``mechanism`` and report learned vs truthful bidding."""
    bidders = train(setting, mechanism, config)
    return {**evaluate_bidders(bidders, mechanism, n=n, seed=(config or Config()).seed + 1), **bidders.report}
