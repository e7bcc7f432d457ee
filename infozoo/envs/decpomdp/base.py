"""The common shape of the Dec-POMDP environments: a batched numpy *model* and one generic
PettingZoo ``ParallelEnv`` over it.

Every Dec-POMDP in infozoo is written once, as a ``DecPOMDPModel`` that simulates a batch of
``B`` independent episodes with vectorised numpy:

- ``reset(B, rng) -> (internal, obs [B, n, obs_dim])``
- ``step(internal, actions, rng) -> (internal, obs [B, n, obs_dim], rewards [B, n])`` where
  ``actions`` is ``int64 [B, n]`` (discrete) or ``float [B, n, action_dim]`` (continuous)
- ``state_vector(internal) -> float [B, state_dim]``: the true global state as a flat vector

``DecPOMDPEnv`` runs the model with ``B = 1`` behind the PettingZoo parallel API; the dataset
collector (``infozoo.envs.decpomdp.histories``) runs it with large ``B``. Both therefore share
one implementation of the dynamics.

Timing convention: ``reset`` draws ``s_0`` and the first observations ``o_0``; ``step`` applies
the joint action ``a_t``, pays the rewards ``r_t(s_t, a_t)``, draws ``s_{t+1}`` and
``o_{t+1}``. Every episode lasts exactly ``max_cycles`` steps (all agents truncate together).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from infozoo.envs.common import box_action, check_render_mode, check_step, discrete_action, emit


@dataclass(frozen=True)
class ModelInfo:
    """Static facts about a Dec-POMDP that datasets, filters and reconstructors need.

    ``state_kind`` is ``"discrete"`` when the state takes finitely many values (its vector is then
    a one-hot or a count vector, see the env's docstring) and ``"continuous"`` otherwise.
    """

    n_agents: int
    obs_dim: int
    action_kind: str  # "discrete" or "continuous"
    action_dim: int  # number of actions (discrete) or action vector length (continuous)
    state_dim: int
    state_kind: str  # "discrete" or "continuous"
    collectively_observable: bool
    max_cycles: int
    n_states: int | None = None  # number of distinct states when small and discrete


class DecPOMDPModel:
    """Batched numpy simulator of a Dec-POMDP (see the module docstring for the protocol)."""

    info: ModelInfo
    obs_low: float | np.ndarray = -np.inf
    obs_high: float | np.ndarray = np.inf
    state_low: float | np.ndarray = -np.inf
    state_high: float | np.ndarray = np.inf
    action_low: float | np.ndarray = -np.inf
    action_high: float | np.ndarray = np.inf

    def reset(self, batch: int, rng: np.random.Generator) -> tuple[Any, np.ndarray]:
        raise NotImplementedError

    def step(self, internal: Any, actions: np.ndarray, rng: np.random.Generator
             ) -> tuple[Any, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def state_vector(self, internal: Any) -> np.ndarray:
        raise NotImplementedError

    def render_text(self, internal: Any) -> str:
        return f"state {np.round(self.state_vector(internal)[0], 3).tolist()}"

    def to_dict(self) -> dict[str, Any]:
        """The constructor arguments (JSON-able), stored in dataset metadata."""
        raise NotImplementedError


class DecPOMDPEnv(ParallelEnv):
    """PettingZoo parallel environment over a ``DecPOMDPModel`` with one episode at a time.

    Subclasses set ``metadata`` and build their model in ``__init__``; the docstring of each
    subclass documents its environment. Actions are checked, never coerced: a discrete action must
    be a Python or numpy integer in range (1.7, "1", True or NaN raise ``ValueError`` naming the
    agent), a continuous one a finite vector of the action shape.
    """

    metadata: dict[str, Any] = {"name": "decpomdp", "render_modes": ["ansi", "human"],
                                "is_parallelizable": True, "collectively_observable": False}

    def __init__(self, model: DecPOMDPModel, render_mode: str | None = None) -> None:
        check_render_mode(render_mode, self.metadata)
        self.model = model
        self.render_mode = render_mode
        info = model.info
        self.possible_agents = [f"agent_{i}" for i in range(info.n_agents)]
        self.agents: list[str] = []
        self._obs_spaces = {a: spaces.Box(_f32(model.obs_low, info.obs_dim), _f32(model.obs_high, info.obs_dim),
                                          (info.obs_dim,), np.float32) for a in self.possible_agents}
        self._act_spaces = {a: self._action_space(info) for a in self.possible_agents}
        self.state_space = spaces.Box(_f32(model.state_low, info.state_dim), _f32(model.state_high, info.state_dim),
                                      (info.state_dim,), np.float32)
        self._rng = np.random.default_rng()
        self._internal: Any = None
        self._t = 0
        self._last_rewards = np.zeros(info.n_agents)

    def _action_space(self, info: ModelInfo) -> spaces.Space:
        if info.action_kind == "discrete":
            return spaces.Discrete(info.action_dim)
        return spaces.Box(_f32(self.model.action_low, info.action_dim), _f32(self.model.action_high, info.action_dim),
                          (info.action_dim,), np.float32)

    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._act_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            for i, a in enumerate(self.possible_agents):
                self._act_spaces[a].seed(int(seed) + i)
        self._internal, obs = self.model.reset(1, self._rng)
        self._t = 0
        self._last_rewards = np.zeros(self.model.info.n_agents)
        self.agents = list(self.possible_agents)
        return self._obs_dict(obs), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        check_step(self.agents, actions)
        info = self.model.info
        if info.action_kind == "discrete":
            act = np.empty((1, info.n_agents), dtype=np.int64)
            for i, a in enumerate(self.agents):
                act[0, i] = discrete_action(a, actions[a], info.action_dim)
        else:
            act = np.empty((1, info.n_agents, info.action_dim))
            for i, a in enumerate(self.agents):
                act[0, i] = box_action(a, actions[a], (info.action_dim,),
                                       form=f"a finite vector of shape ({info.action_dim},)")
        self._internal, obs, rewards = self.model.step(self._internal, act, self._rng)
        self._t += 1
        self._last_rewards = rewards[0]
        agents = self.agents
        done = self._t >= info.max_cycles
        out = (self._obs_dict(obs), {a: float(rewards[0, i]) for i, a in enumerate(agents)},
               {a: False for a in agents}, {a: done for a in agents}, {a: {} for a in agents})
        if done:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return out

    def state(self) -> np.ndarray:
        if self._internal is None:
            raise RuntimeError("state() called before reset()")
        return self.model.state_vector(self._internal)[0].astype(np.float32)

    def render(self) -> str | None:
        if self.render_mode is None:
            return None
        text = f"{self.metadata['name']} t={self._t}\n" + (
            self.model.render_text(self._internal) if self._internal is not None else "(not reset)")
        return emit(text, self.render_mode)

    def close(self) -> None:
        pass

    def _obs_dict(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return {a: obs[0, i].astype(np.float32) for i, a in enumerate(self.agents)}


def _f32(bound: float | np.ndarray, dim: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(bound, dtype=np.float32), (dim,)).copy()


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, low: float = -np.inf, high: float = np.inf) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}") from None
    if not (low <= x <= high):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return x
