"""PPO designer of a sequential price mechanism (Brero et al., AAAI 2021), with stable-baselines3.

The designer's problem is the Gymnasium env ``infozoo/SequentialPriceDesigner-v0``
(``SequentialPriceDesignerEnv``): an episode visits bidders 0..n-1 of one value profile; at visit
t the policy pi_theta(a | h_t) sees the public history h_t (unsold items, which bidder is next,
who bought what at which prices — never the values of bidders still to come) and posts price
fractions a in [-1, 1]^m, p_tj = (a_j + 1)/2 * high_tj; the bidder buys its utility-maximising
bundle and the reward is its payment. With gamma = 1 the return is the revenue, so PPO maximises

    J(theta) = E_{v ~ F} E_{a ~ pi_theta}[ sum_t sum_{j in B_t} p_tj ],

by the clipped surrogate L = E[min(r_k A_k, clip(r_k, 1 - eps, 1 + eps) A_k)] with
r_k = pi_theta(a_k | h_k) / pi_old(a_k | h_k) and GAE advantages A_k. As in the public
deep-seq-auctions code (SB3 PPO with a small initial log-std, gamma = 1, many parallel
episodes), the Gaussian policy starts narrow (``log_std_init``) because revenue is very sensitive
to prices. The trained mechanism posts the policy's *mean* prices (deterministic) and is
strategy-proof and IR by construction whatever the policy; ``spm-dp`` is the exact optimum of the
same class (item prices, order 0..n-1) that it is measured against.

Registered as solver ``spm-ppo``: ``Config``, ``default_config``, ``fit``, ``load``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from infozoo.core.checkpoint import load_checkpoint, save_checkpoint
from infozoo.core.seeding import torch_generator
from infozoo.core.torch_utils import set_threads
from infozoo.envs.auction.mechanism import Outcome
from infozoo.envs.auction.settings import AuctionSetting, from_dict
from infozoo.envs.sequential_price.rules import (
    History,
    SequentialPriceMechanism,
    check_setting,
    choose,
    observation_size,
    prices_from_action,
)

KIND = "spm-ppo"
ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}


@dataclass
class Config:
    """PPO hyper-parameters of the designer (SB3 names)."""

    total_timesteps: int = 200_000  # designer decisions (visits) to train on
    n_envs: int = 32  # parallel episodes (copies of the designer env)
    n_steps: int = 64  # rollout length per env between updates
    batch_size: int = 512  # PPO minibatch
    n_epochs: int = 5  # passes over each rollout
    learning_rate: float = 3e-4  # Adam step size
    gamma: float = 1.0  # discount: 1, the return is the revenue
    gae_lambda: float = 1.0  # GAE lambda (episodes are n steps: Monte-Carlo returns)
    clip_range: float = 0.2  # PPO ratio clipping eps
    ent_coef: float = 0.0  # entropy bonus
    log_std_init: float = -1.0  # initial log std of the Gaussian price fractions
    net_arch: list[int] = field(default_factory=lambda: [64, 64])  # hidden layers (policy and value)
    activation: str = "tanh"  # hidden activation: tanh or relu
    seed: int = 0  # seeds PPO (weights, action noise) and the value draws
    threads: int | None = 1  # torch CPU threads (None/0: torch default)


def default_config(setting: AuctionSetting, profile: str = "quick", seed: int = 0) -> Config:
    """Quick: 50k visits per bidder (2x2: about 10 s of CPU on one thread, 30-40 s of wall time on
    a busy 2-core machine, within 0.5% of the DP optimum); full: 10x longer with wider networks
    and more parallel episodes."""
    if profile not in ("quick", "full"):
        raise ValueError(f"unknown profile {profile!r}; valid: 'quick', 'full'")
    if profile == "quick":
        return Config(total_timesteps=50_000 * setting.bidders, seed=seed)
    return Config(total_timesteps=500_000 * setting.bidders, net_arch=[256, 256], n_envs=128,
                  n_steps=32, batch_size=1024, seed=seed)


def _spaces(setting: AuctionSetting) -> tuple[spaces.Box, spaces.Box]:
    n, m = setting.shape
    return (spaces.Box(0.0, 1.0, (observation_size(n, m),), np.float32),
            spaces.Box(-1.0, 1.0, (m,), np.float32))


def _policy(setting: AuctionSetting, config: Config) -> Any:
    from stable_baselines3.common.policies import ActorCriticPolicy

    obs_space, act_space = _spaces(setting)
    return ActorCriticPolicy(obs_space, act_space, lambda _: 0.0, net_arch=list(config.net_arch),
                             activation_fn=ACTIVATIONS[config.activation], log_std_init=config.log_std_init)


class DesignerVecEnv(VecEnv):
    """``n_envs`` episodes of ``SequentialPriceDesignerEnv`` in lockstep, vectorised with numpy.

    Same rules, observations, actions and rewards as the Gymnasium env (both use
    ``rules.History`` and ``rules.choose``); every episode lasts n visits, so all copies start and
    end together. The value profiles of a round of episodes are drawn at once from one generator,
    re-seeded by ``seed(s)`` (which ``PPO(seed=s)`` calls) at the next reset. Only used for
    training speed: a Python env per copy costs about 0.3 ms a step, this about 0.3 ms a round.
    """

    def __init__(self, setting: AuctionSetting, n_envs: int, seed: int | None = None) -> None:
        self.setting = check_setting(setting)
        self.render_mode = None
        obs_space, act_space = _spaces(setting)
        super().__init__(n_envs, obs_space, act_space)
        n, m = setting.shape
        self.n = n
        self.high = setting.high().numpy()
        self.history = History(n, m, n_envs)
        self.generator = torch_generator(seed)
        self.values = np.zeros((n_envs, n, m))
        self.t = 0
        self._seed: int | None = None
        self._actions = np.zeros((n_envs, m))

    def seed(self, seed: int | None = None) -> list[int | None]:
        self._seed = int(seed) if seed is not None else None
        return [None if seed is None else int(seed) + k for k in range(self.num_envs)]

    def _new_round(self) -> np.ndarray:
        if self._seed is not None:
            self.generator, self._seed = torch_generator(self._seed), None
        self.values = self.setting.sample(self.num_envs, self.generator).numpy()
        self.history.clear()
        self.t = 0
        return self.history.observation(0)

    def reset(self) -> VecEnvObs:
        return self._new_round()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float64)

    def step_wait(self) -> VecEnvStepReturn:
        t, h = self.t, self.history
        p = prices_from_action(self._actions, self.high[t])
        buy = choose(self.values[:, t], p, h.remaining, self.setting.unit_demand)
        pay = h.record(t, buy, p, self.high[t]).astype(np.float32)
        self.t += 1
        if self.t < self.n:
            return h.observation(self.t), pay, np.zeros(self.num_envs, bool), [{} for _ in range(self.num_envs)]
        last = h.observation(self.t)
        infos = [{"terminal_observation": last[k], "TimeLimit.truncated": False} for k in range(self.num_envs)]
        return self._new_round(), pay, np.ones(self.num_envs, bool), infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: VecEnvIndices = None, **kwargs: Any) -> list[Any]:
        raise NotImplementedError("DesignerVecEnv runs its copies in lockstep; it has no per-copy methods")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


class PolicyPrices:
    """The mean of a trained SB3 Gaussian policy as a ``PricePolicy`` (deterministic prices)."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy.eval()

    def __call__(self, obs: torch.Tensor, t: int, remaining: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.policy._predict(obs.float(), deterministic=True).double().clamp(-1, 1)


@dataclass
class PPOSequentialPrices:
    """A trained PPO designer as an auction mechanism: ``mechanism(bids) -> Outcome``."""

    setting: AuctionSetting
    policy: Any  # stable_baselines3 ActorCriticPolicy
    config: Config
    report: dict[str, Any] = field(default_factory=dict)
    strategyproof: bool = field(default=True, init=False)
    name: str = field(default=KIND, init=False)

    def __post_init__(self) -> None:
        self._mechanism = SequentialPriceMechanism(self.setting, PolicyPrices(self.policy), name=KIND)

    def __call__(self, bids: torch.Tensor) -> Outcome:
        return self._mechanism(bids)

    def menus(self, bids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each bidder's menu of bundles at its posted prices (``SequentialPriceMechanism.menus``)."""
        return self._mechanism.menus(bids)

    def prices(self, bids: torch.Tensor) -> torch.Tensor:
        """Prices posted to each bidder [B, n, m] (0 for items already sold at its visit)."""
        _, offered, unsold = self._mechanism.run(bids.double())
        return offered * unsold

    def save(self, directory: str | Path) -> Path:
        tensors = {f"policy.{k}": v for k, v in self.policy.state_dict().items()}
        return save_checkpoint(directory, tensors, {"kind": KIND, "setting": self.setting.to_dict(),
                                                    "config": asdict(self.config), "report": self.report})


def fit(setting: AuctionSetting, config: Config | None = None) -> PPOSequentialPrices:
    """Train the PPO designer on ``setting`` and return the mechanism with its mean prices."""
    from stable_baselines3 import PPO

    from infozoo.baselines.auction.spm_dp import best_sequential_prices
    from infozoo.baselines.sb3 import ProgressCallback

    config = config or default_config(setting)
    if config.activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {config.activation!r}; valid: {', '.join(ACTIVATIONS)}")
    set_threads(config.threads)
    t0 = time.perf_counter()
    venv = DesignerVecEnv(setting, config.n_envs, seed=config.seed)
    model = PPO("MlpPolicy", venv, n_steps=config.n_steps, batch_size=config.batch_size,
                n_epochs=config.n_epochs, learning_rate=config.learning_rate, gamma=config.gamma,
                gae_lambda=config.gae_lambda, clip_range=config.clip_range, ent_coef=config.ent_coef,
                policy_kwargs={"net_arch": list(config.net_arch), "log_std_init": config.log_std_init,
                               "activation_fn": ACTIVATIONS[config.activation]},
                seed=config.seed, device="cpu", verbose=0)
    model.learn(config.total_timesteps, callback=ProgressCallback(config.total_timesteps, f"{KIND} {setting.name}"))
    venv.close()
    report: dict[str, Any] = {"train_time": time.perf_counter() - t0, "timesteps": config.total_timesteps}
    if not setting.unit_demand or setting.items <= 2:  # the DP reference, where it is cheap
        report["dp_revenue"] = best_sequential_prices(setting)[1]
    return PPOSequentialPrices(setting, model.policy.to("cpu"), config, report)


def load(directory: str | Path) -> PPOSequentialPrices:
    tensors, meta = load_checkpoint(directory, kind=KIND)
    setting = from_dict(meta["setting"])
    config = Config(**meta["config"])
    policy = _policy(setting, config)
    policy.load_state_dict({k.removeprefix("policy."): v for k, v in tensors.items()})
    return PPOSequentialPrices(setting, policy, config, meta.get("report", {}))
