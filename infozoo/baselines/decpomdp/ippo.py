"""IPPO: independent PPO with one policy shared by all agents (stable-baselines3), on the
Dec-POMDPs, with three observation variants:

- ``"local"``: each agent sees its own observation ``o_i`` only (the Dec-POMDP as it is);
- ``"oracle"``: ``[o_i, s]``, its observation plus the true global state (an upper reference);
- ``"reconstructed"``: ``[o_i, s_hat]`` where ``s_hat = reconstructor.reconstruct(h)`` is computed
  from the joint action-observation history ``h [1, t+1, n, F]`` (the dataset layout of
  ``infozoo.envs.decpomdp.histories``) by any state reconstructor (DESIGN.md contract:
  ``reconstruct(histories [B, T, n, F]) -> states [B, d]``), e.g. the diffusion model or
  ``regression.HistoryRegression`` in joint mode. When the reconstructor also has the optional
  streaming API (``stream(batch) -> ReconstructionStream`` with ``step(rows [B, n, F]) -> [B, d]``,
  see ``infozoo.solvers.diffusion.model``), the wrapper opens one stream per env copy and feeds it
  one history row per step: one GRU step and one flow per env step instead of re-encoding the whole
  history. ``Config.recon_flow`` / ``recon_warm`` can make that flow cheaper (fewer annealing steps,
  warm start); the default is the model's own flow, because on sensor-grid the cheaper flows
  measured so far change the reconstruction erratically: test nMSE 0.226 with the model's 20
  annealing steps, 1.32 / 0.23 / 0.86 / 0.65 / 0.20 with 5 / 6 / 8 / 10 / 14, and 1.2-1.8 with a
  warm start at sigma_max 1-2 (quick-profile model, seed 0, on the ``decpomdp`` table's 128 test
  episodes, 2026-11-26). The stream costs about 100 ms per env step on sensor-grid (15 agents x 21
  sweeps of batch-1 denoiser calls), against about 170 ms for ``reconstruct`` on the whole history.

PPO maximises the clipped surrogate ``E[min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)]`` with
``r_t = pi(a_t | o_t) / pi_old(a_t | o_t)`` and GAE advantages (gamma, lambda); every (copy, agent)
pair is one sub-environment of ``infozoo.baselines.sb3.PettingZooVecEnv`` (parameter sharing).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from infozoo.core.checkpoint import load_checkpoint, save_checkpoint
from infozoo.envs.decpomdp.histories import history_rows, make_policy

VARIANTS = ("local", "oracle", "reconstructed")
KIND = "decpomdp-ippo"


@dataclass
class Config:
    env_id: str = "sensor-grid-v0"  # a registered Dec-POMDP id
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # its arguments
    variant: str = "local"  # "local", "oracle" (true state appended) or "reconstructed"
    total_timesteps: int = 300_000  # agent-steps of experience (each env step gives n of them)
    n_copies: int = 4  # environment copies (sub-envs = n_copies * n_agents)
    n_steps: int = 64  # rollout length per sub-env between updates
    batch_size: int = 480  # PPO minibatch size (divides n_steps * n_copies * n_agents for sensor-grid)
    n_epochs: int = 5  # PPO epochs per update
    lr: float = 3e-4  # Adam learning rate
    gamma: float = 0.95  # discount
    gae_lambda: float = 0.95  # GAE lambda
    clip_range: float = 0.2  # PPO clip epsilon
    ent_coef: float = 0.01  # entropy bonus
    net_arch: list[int] = field(default_factory=lambda: [128, 128])  # policy and value MLP widths
    eval_episodes: int = 200  # episodes of the deterministic policy in evaluate()
    recon_stream: bool = True  # "reconstructed": use reconstructor.stream when it has one
    recon_flow: dict[str, Any] = field(default_factory=dict)  # FlowSettings overrides of the stream ({}: model's)
    recon_warm: dict[str, Any] | None = None  # warm start from the previous estimate, with these overrides
    seed: int = 0  # PPO and environment seed


def default_config(env_id: str = "sensor-grid-v0", variant: str = "local", profile: str = "quick",
                   seed: int = 0) -> Config:
    """Budgets: ``quick`` (a few minutes on 2 CPU cores per variant), ``full`` (about 10x more)."""
    if profile not in ("quick", "full"):
        raise ValueError(f"unknown profile {profile!r}; valid: quick, full")
    steps = 300_000 if profile == "quick" else 3_000_000
    return Config(env_id=env_id, variant=variant, total_timesteps=steps, seed=seed)


class StateObservationWrapper(ParallelEnv):
    """Appends a global-state vector to every agent's observation: the true state (``"oracle"``)
    or ``reconstructor.reconstruct(joint history so far)[0]`` (``"reconstructed"``).

    The wrapper records the joint history in the dataset layout (rows ``[o_{i,t}, a_{i,t-1}]``),
    so a reconstructor trained on ``collect`` data sees inputs of the same form. If the
    reconstructor has ``stream`` and ``use_stream`` is true, the rows go to its own stream
    (``reconstructor.stream(1, **stream_options)``, reset with the env) instead; otherwise each
    step calls ``reconstruct`` on the whole history ``[1, t+1, n, F]``."""

    def __init__(self, env: Any, variant: str, reconstructor: Any = None, use_stream: bool = True,
                 stream_options: dict[str, Any] | None = None) -> None:
        if variant not in ("oracle", "reconstructed"):
            raise ValueError(f"StateObservationWrapper variant must be 'oracle' or 'reconstructed', got {variant!r}")
        if variant == "reconstructed" and not hasattr(reconstructor, "reconstruct"):
            raise ValueError("the 'reconstructed' variant needs a reconstructor with reconstruct(histories) -> [B, d]")
        self.env, self.variant, self.reconstructor = env, variant, reconstructor
        self.stream = None
        self.recon_seconds, self.recon_steps = 0.0, 0  # wall time spent reconstructing, and how many times
        if variant == "reconstructed" and use_stream and hasattr(reconstructor, "stream"):
            self.stream = reconstructor.stream(1, **(stream_options or {}))
        self.model = env.model
        self.metadata = env.metadata
        self.possible_agents = env.possible_agents
        self.render_mode = env.render_mode
        self.state_space = env.state_space
        d = self.state_space.shape[0]
        self._spaces = {}
        for a in self.possible_agents:
            base = env.observation_space(a)
            lo = np.concatenate([base.low, self.state_space.low if variant == "oracle" else np.full(d, -np.inf)])
            hi = np.concatenate([base.high, self.state_space.high if variant == "oracle" else np.full(d, np.inf)])
            self._spaces[a] = spaces.Box(lo.astype(np.float32), hi.astype(np.float32), dtype=np.float32)
        self._rows: list[np.ndarray] = []

    @property
    def agents(self) -> list[str]:
        return self.env.agents

    def observation_space(self, agent: str) -> spaces.Space:
        return self._spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.env.action_space(agent)

    def state(self) -> np.ndarray:
        return self.env.state()

    def _augment(self, obs: dict[str, np.ndarray], prev: np.ndarray | None) -> dict[str, np.ndarray]:
        if not obs:
            return obs
        if self.variant == "oracle":
            extra = self.env.state()
        else:
            stacked = np.stack([obs[a] for a in self.possible_agents])[None]
            self._rows.append(history_rows(self.model, stacked, None if prev is None else prev[None])[0])
            t0 = time.perf_counter()
            if self.stream is not None:
                extra = np.asarray(self.stream.step(self._rows[-1][None]), dtype=np.float32).reshape(-1)
            else:
                hist = np.stack(self._rows)[None]  # [1, t+1, n, F]
                extra = np.asarray(self.reconstructor.reconstruct(hist), dtype=np.float32).reshape(-1)
            self.recon_seconds += time.perf_counter() - t0
            self.recon_steps += 1
        return {a: np.concatenate([o, extra]).astype(np.float32) for a, o in obs.items()}

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs, infos = self.env.reset(seed=seed, options=options)
        self._rows = []
        if self.stream is not None:
            self.stream.reset()
        return self._augment(obs, None), infos

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        prev = np.stack([np.asarray(actions[a]) for a in self.possible_agents])
        obs, rew, term, trunc, info = self.env.step(actions)
        return self._augment(obs, prev), rew, term, trunc, info

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


def make_env(config: Config, reconstructor: Any = None) -> Any:
    """The (wrapped) parallel env of ``config.variant``."""
    import infozoo

    if config.variant not in VARIANTS:
        raise ValueError(f"unknown IPPO variant {config.variant!r}; valid: {', '.join(VARIANTS)}")
    env = infozoo.make(config.env_id, **config.env_kwargs)
    if config.variant == "local":
        return env
    options = {**config.recon_flow, "warm": config.recon_warm}
    return StateObservationWrapper(env, config.variant, reconstructor, config.recon_stream, options)


class IPPOPolicy:
    """A trained shared policy: ``act(obs [n, obs_dim]) -> actions``, ``evaluate``, ``save``."""

    def __init__(self, ppo: Any, config: Config, report: dict[str, Any] | None = None,
                 reconstructor: Any = None) -> None:
        self.ppo, self.config, self.report, self.reconstructor = ppo, config, report or {}, reconstructor

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return self.ppo.predict(obs, deterministic=deterministic)[0]

    def save(self, directory: str | Path) -> Path:
        return save_checkpoint(directory, dict(self.ppo.policy.state_dict()),
                               {"kind": KIND, "config": asdict(self.config), "report": self.report})


def _ppo(config: Config, venv: Any) -> Any:
    import torch
    from stable_baselines3 import PPO

    return PPO("MlpPolicy", venv, n_steps=config.n_steps, batch_size=config.batch_size, n_epochs=config.n_epochs,
               learning_rate=config.lr, gamma=config.gamma, gae_lambda=config.gae_lambda,
               clip_range=config.clip_range, ent_coef=config.ent_coef, seed=config.seed, device="cpu", verbose=0,
               policy_kwargs={"net_arch": list(config.net_arch), "activation_fn": torch.nn.Tanh})


def fit(config: Config | None = None, reconstructor: Any = None) -> IPPOPolicy:
    """Train the shared policy; deterministic under ``config.seed`` on CPU."""
    from infozoo.baselines.sb3 import PettingZooVecEnv

    config = config or Config()
    venv = PettingZooVecEnv(lambda: make_env(config, reconstructor), config.n_copies, seed=config.seed)
    ppo = _ppo(config, venv)
    t0 = time.perf_counter()
    ppo.learn(total_timesteps=config.total_timesteps, progress_bar=False)
    report: dict[str, Any] = {"train_time": time.perf_counter() - t0, "timesteps": int(ppo.num_timesteps)}
    steps = sum(getattr(e, "recon_steps", 0) for e in venv.envs)
    if steps:
        report["recon_ms_per_step"] = 1000 * sum(e.recon_seconds for e in venv.envs) / steps
        report["recon_share_of_train_time"] = sum(e.recon_seconds for e in venv.envs) / report["train_time"]
    return IPPOPolicy(ppo, config, report, reconstructor)


def load(directory: str | Path, reconstructor: Any = None) -> IPPOPolicy:
    from infozoo.baselines.sb3 import PettingZooVecEnv

    tensors, cfg = load_checkpoint(directory, KIND)
    config = Config(**cfg["config"])
    venv = PettingZooVecEnv(lambda: make_env(config, reconstructor), 1, seed=config.seed)
    ppo = _ppo(config, venv)
    ppo.policy.load_state_dict(tensors)
    return IPPOPolicy(ppo, config, cfg.get("report"), reconstructor)


def evaluate(policy: Any, config: Config, episodes: int | None = None, seed: int = 10_000,
             reconstructor: Any = None) -> dict[str, float]:
    """Mean episode return (summed over steps, averaged over agents) of ``policy`` on fresh
    episodes seeded ``seed, seed+1, ...``. ``policy`` is an ``IPPOPolicy`` or ``"random"`` /
    ``"scripted"`` (the dataset policies, on local observations)."""
    episodes = episodes or config.eval_episodes
    env = make_env(config, reconstructor if reconstructor is not None else getattr(policy, "reconstructor", None))
    named = None
    if isinstance(policy, str):
        named = make_policy(env.model, policy)[1]
    rng = np.random.default_rng(seed)
    returns = []
    for e in range(episodes):
        obs, _ = env.reset(seed=seed + e)
        total, t = 0.0, 0
        while env.agents:
            stacked = np.stack([obs[a] for a in env.agents])
            acts = policy.act(stacked) if named is None else named(stacked[None], t, rng)[0]
            obs, rew, _, _, _ = env.step({a: acts[i] for i, a in enumerate(env.agents)})
            total += float(np.mean(list(rew.values())))
            t += 1
        returns.append(total)
    r = np.asarray(returns)
    return {"return_mean": float(r.mean()), "return_se": float(r.std(ddof=1) / np.sqrt(len(r))),
            "episodes": int(episodes)}
