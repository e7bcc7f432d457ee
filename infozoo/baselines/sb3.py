"""A PettingZoo parallel environment as a Stable-Baselines3 ``VecEnv``, with parameter sharing.

``PettingZooVecEnv(env_fn, n_copies, seed)`` builds ``n_copies`` independent copies of the
parallel environment ``env_fn()`` and exposes every (copy, agent) pair as one sub-environment of
an SB3 vector env: sub-env ``k * N + i`` is agent ``i`` (in ``possible_agents`` order) of copy
``k``, so ``num_envs = n_copies * N``. One SB3 policy then acts for every agent (parameter
sharing, as in IPPO / "MAPPO with shared parameters"); each agent still sees only its own
observation and gets its own reward.

Why our own adapter (see REFERENCE.md): SuperSuit's ``pettingzoo_env_to_vec_env_v1`` +
``concat_vec_envs_v1`` works for parameter-shared PPO, but ``PPO(..., seed=...)`` fails on its
vector env, and its copies are pickled clones that share one random generator, so "independent"
copies can produce identical episodes. Here:

- every copy is its own ``env_fn()`` object (checked), reset the first time with its own seed
  ``seed + k`` and with its agents' action spaces seeded from ``(seed, k, i)``;
- ``seed(s)`` (what ``PPO(seed=s)`` calls through ``set_random_seed``) re-seeds the copies the same
  way at their next reset, so two runs with the same seed give identical rollouts and parameters
  (on CPU, with the same torch thread count);
- after the first reset the copies continue their own generators: auto-resets pass no seed.

Requirements on the environment (checked, with a ``ValueError`` naming what is wrong):

- all agents share one observation space and one action space (parameter sharing);
- the agents form a fixed set during an episode: ``reset`` returns observations for every agent
  in ``possible_agents``, and every step all agents act and the episode ends for all of them at
  the same step (all terminated or truncated together). Environments where agents die or join
  mid-episode need padding/masking and are not supported.

When a copy's episode ends, its agents' infos carry ``terminal_observation`` (the last
observation, as SB3's bootstrapping for truncated episodes expects) and ``TimeLimit.truncated``,
and the copy is reset at once; the returned observation is the first one of the new episode.
Wrap the result in ``stable_baselines3.common.vec_env.VecMonitor`` to log episode returns.

>>> from infozoo.baselines.sb3 import PettingZooVecEnv
>>> import infozoo
>>> venv = PettingZooVecEnv(lambda: infozoo.make("auction-v0"), n_copies=4, seed=0)
>>> obs = venv.reset()  # shape [4 copies * 2 bidders, 2 items]
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from copy import deepcopy
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn
from stable_baselines3.common.vec_env.util import dict_to_obs, obs_space_info

from infozoo.core.progress import progress


def _space_seed(seed: int, copy: int, agent: int) -> int:
    """A well-mixed seed for agent ``agent`` of copy ``copy`` (independent streams per pair)."""
    return int(np.random.SeedSequence([seed, copy, agent]).generate_state(1)[0])


class PettingZooVecEnv(VecEnv):
    """``n_copies`` copies of a PettingZoo parallel env; each (copy, agent) pair is one sub-env.

    Arguments:
        env_fn: a zero-argument function returning a *new* ``ParallelEnv`` at each call.
        n_copies: how many independent copies of the environment to run (>= 1).
        seed: base seed; copy ``k`` is first reset with ``seed + k``. ``None`` draws a random
            base seed (copies still get distinct seeds).
    """

    def __init__(self, env_fn: Callable[[], Any], n_copies: int, seed: int | None = None) -> None:
        if isinstance(n_copies, bool) or not isinstance(n_copies, int) or n_copies < 1:
            raise ValueError(f"n_copies must be a positive integer, got {n_copies!r}")
        self.envs = [env_fn() for _ in range(n_copies)]
        if len({id(e) for e in self.envs}) != n_copies:
            raise ValueError("env_fn returned the same environment object twice; it must build a new "
                             "environment at every call (e.g. lambda: infozoo.make(...))")
        first = self.envs[0]
        self.agents: list[str] = list(first.possible_agents)
        if not self.agents:
            raise ValueError("the environment has no possible_agents")
        obs_space, act_space = first.observation_space(self.agents[0]), first.action_space(self.agents[0])
        for a in self.agents[1:]:
            if first.observation_space(a) != obs_space or first.action_space(a) != act_space:
                raise ValueError(f"parameter sharing needs every agent to have the same observation and "
                                 f"action spaces; {a!r} differs from {self.agents[0]!r}")
        for k, e in enumerate(self.envs[1:], start=1):
            if list(e.possible_agents) != self.agents:
                raise ValueError(f"copy {k} has possible_agents {list(e.possible_agents)}, copy 0 has "
                                 f"{self.agents}; every copy must have the same agents")
        self.n_copies = n_copies
        self.n_agents = len(self.agents)
        # the vector env's own spaces are copies: SB3 seeds them, which must not touch the copies'
        super().__init__(n_copies * self.n_agents, deepcopy(obs_space), deepcopy(act_space))
        self.keys, shapes, dtypes = obs_space_info(self.observation_space)
        self.buf_obs = OrderedDict((k, np.zeros((self.num_envs, *shapes[k]), dtype=dtypes[k])) for k in self.keys)
        self.buf_rews = np.zeros((self.num_envs,), dtype=np.float32)
        self.buf_dones = np.zeros((self.num_envs,), dtype=bool)
        self.buf_infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        self._copy_seeds: list[int | None] = [None] * n_copies
        self._actions: np.ndarray | None = None
        self.seed(seed)

    # -- seeding --------------------------------------------------------------------------------
    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Copy ``k`` is reset with ``seed + k`` at its next reset, and agent ``i`` of copy ``k`` gets
        an action-space seed derived from ``(seed, k, i)``. Returns one seed per sub-env."""
        if seed is None:
            seed = int(np.random.randint(0, np.iinfo(np.uint32).max, dtype=np.uint32))
        seed = int(seed)
        self._copy_seeds = [seed + k for k in range(self.n_copies)]
        for k, e in enumerate(self.envs):
            for i, a in enumerate(self.agents):
                e.action_space(a).seed(_space_seed(seed, k, i))
        return [seed + k for k in range(self.n_copies) for _ in self.agents]

    # -- reset and step -------------------------------------------------------------------------
    def reset(self) -> VecEnvObs:
        for k in range(self.n_copies):
            self._reset_copy(k, self._copy_seeds[k], self._options[k * self.n_agents] or None)
        self._copy_seeds = [None] * self.n_copies  # seeds and options are used once, like DummyVecEnv
        self._reset_seeds()
        self._reset_options()
        return self._obs_from_buf()

    def _reset_copy(self, k: int, seed: int | None, options: dict | None = None) -> None:
        obs, infos = self.envs[k].reset(seed=seed, options=options)
        missing = [a for a in self.agents if a not in obs]
        if missing or list(self.envs[k].agents) != self.agents:
            raise ValueError(f"PettingZooVecEnv needs a fixed set of agents: after reset, copy {k} has "
                             f"agents {list(self.envs[k].agents)} (observations for {sorted(obs)}), "
                             f"expected {self.agents}")
        for i, a in enumerate(self.agents):
            j = k * self.n_agents + i
            self._save_obs(j, obs[a])
            self.reset_infos[j] = dict(infos.get(a, {}))

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        N = self.n_agents
        discrete = isinstance(self.action_space, spaces.Discrete)
        for k, e in enumerate(self.envs):
            acts = {a: (int(self._actions[k * N + i]) if discrete else self._actions[k * N + i])
                    for i, a in enumerate(self.agents)}
            obs, rews, terms, truncs, infos = e.step(acts)
            done = {a: bool(terms.get(a, False) or truncs.get(a, False)) for a in self.agents}
            if len(set(done.values())) != 1:
                raise ValueError(f"PettingZooVecEnv needs a fixed set of agents during an episode: in copy "
                                 f"{k} the episode ended for {[a for a in self.agents if done[a]]} but not "
                                 f"for {[a for a in self.agents if not done[a]]}")
            ended = done[self.agents[0]]
            for i, a in enumerate(self.agents):
                j = k * N + i
                self.buf_rews[j] = float(rews.get(a, 0.0))
                self.buf_dones[j] = ended
                info = dict(infos.get(a, {}))
                info["TimeLimit.truncated"] = bool(truncs.get(a, False) and not terms.get(a, False))
                if ended:
                    info["terminal_observation"] = obs[a] if a in obs else self._obs_at(j)
                elif a in obs:
                    self._save_obs(j, obs[a])
                else:
                    raise ValueError(f"copy {k}: step returned no observation for live agent {a!r}")
                self.buf_infos[j] = info
            if ended:
                self._reset_copy(k, None)
        self._actions = None
        return self._obs_from_buf(), np.copy(self.buf_rews), np.copy(self.buf_dones), deepcopy(self.buf_infos)

    def _save_obs(self, j: int, obs: Any) -> None:
        for key in self.keys:
            self.buf_obs[key][j] = obs if key is None else obs[key]

    def _obs_at(self, j: int) -> Any:
        if self.keys == [None]:
            return self.buf_obs[None][j].copy()
        return {key: self.buf_obs[key][j].copy() for key in self.keys}

    def _obs_from_buf(self) -> VecEnvObs:
        return dict_to_obs(self.observation_space, deepcopy(self.buf_obs))

    # -- the rest of the VecEnv interface -------------------------------------------------------
    def close(self) -> None:
        for e in self.envs:
            e.close()

    def _copies(self, indices: VecEnvIndices) -> list[Any]:
        return [self.envs[j // self.n_agents] for j in self._get_indices(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Attribute of the copy that each sub-env belongs to (``render_mode`` defaults to None)."""
        if attr_name == "render_mode":
            return [getattr(e, attr_name, None) for e in self._copies(indices)]
        return [getattr(e, attr_name) for e in self._copies(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for e in self._copies(indices):
            setattr(e, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        return [getattr(e, method_name)(*method_args, **method_kwargs) for e in self._copies(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        warnings.warn("PettingZooVecEnv does not render images", stacklevel=2)
        return [None for _ in range(self.num_envs)]


class ProgressCallback(BaseCallback):
    """A tqdm bar (``infozoo.core.progress``; silent with ``INFOZOO_PROGRESS=0``) over SB3 timesteps."""

    def __init__(self, total: int, desc: str = "PPO") -> None:
        super().__init__()
        self.total, self.desc = total, desc
        self.bar: Any = None

    def _on_training_start(self) -> None:
        self.bar = progress(total=self.total, desc=self.desc)

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()
