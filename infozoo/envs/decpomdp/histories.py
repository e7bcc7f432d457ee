"""Datasets of (per-agent action-observation histories, true states) from any Dec-POMDP here.

The layout (all numpy, float32 unless said; ``N`` episodes, ``T = max_cycles + 1`` time steps
``t = 0..max_cycles``, ``n`` agents):

- ``histories [N, T, n, F]``: row ``t`` of agent ``i`` is ``[o_{i,t}, a_{i,t-1}]``: its
  observation at ``t`` followed by its previous action (one-hot for discrete actions, the raw
  vector for continuous ones; zeros at ``t = 0``). Agent ``i``'s history up to ``t`` is
  ``histories[:, :t+1, i]``; the joint history is ``histories[:, :t+1]``.
  ``meta["feature_slices"]`` gives the two column ranges.
- ``states [N, T, state_dim]``: the true global state ``s_t`` (the env's ``state()``) at every
  step, so every prefix of a history has its target.
- ``actions``: ``int64 [N, T-1, n]`` (discrete) or ``float32 [N, T-1, n, action_dim]``: the
  action taken at ``t``. ``rewards [N, T-1, n]``.
- ``meta``: env id and arguments (``env_kwargs``), ``n_agents``, ``agents``, ``obs_dim``,
  ``action_kind``, ``action_dim``, ``state_dim``, ``state_kind`` (discrete/continuous),
  ``n_states``, ``collectively_observable``, ``max_cycles``, ``policy``, ``seed``, ``episodes``.

Saved as one safetensors file (the arrays; ``meta`` as JSON in its header under ``"infozoo"``)
plus a readable copy of ``meta`` next to it (``FILE.json``). Collection is batched (the env's
numpy model runs many episodes at once) and deterministic under a seed.

>>> from infozoo.envs.decpomdp.histories import collect
>>> data = collect("dec-tiger-v0", episodes=100, seed=0)
>>> data.histories.shape, data.states.shape
((100, 11, 2, 5), (100, 11, 2))
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infozoo.core.files import atomic_write_bytes, atomic_write_json
from infozoo.core.progress import progress
from infozoo.envs.decpomdp.base import DecPOMDPModel

Policy = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
POLICIES = ("random", "scripted")
META_KEY = "infozoo"


@dataclass
class HistoryDataset:
    """Histories, states and metadata of ``N`` episodes (see the module docstring for shapes)."""

    histories: np.ndarray
    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.histories.shape[0]

    @property
    def observations(self) -> np.ndarray:
        """``[N, T, n, obs_dim]``: the observation columns of ``histories``."""
        lo, hi = self.meta["feature_slices"]["observation"]
        return self.histories[..., lo:hi]

    def agent_histories(self, i: int) -> np.ndarray:
        """Agent ``i``'s histories ``[N, T, F]``."""
        return self.histories[:, :, i]

    def joint_histories(self) -> np.ndarray:
        """All agents' histories side by side, ``[N, T, n * F]``."""
        n, t = self.histories.shape[:2]
        return self.histories.reshape(n, t, -1)

    def subset(self, index: slice | np.ndarray) -> HistoryDataset:
        return HistoryDataset(self.histories[index], self.states[index], self.actions[index],
                              self.rewards[index], dict(self.meta))

    def split(self, test_fraction: float = 0.1) -> tuple[HistoryDataset, HistoryDataset]:
        """``(train, test)``: the last ``test_fraction`` of the episodes are the test set."""
        cut = len(self) - max(1, int(round(test_fraction * len(self))))
        return self.subset(slice(0, cut)), self.subset(slice(cut, None))

    def to_torch(self) -> dict[str, Any]:
        import torch

        return {k: torch.from_numpy(np.ascontiguousarray(getattr(self, k)))
                for k in ("histories", "states", "actions", "rewards")}

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (safetensors) and ``path.json`` (the metadata), atomically."""
        from safetensors.numpy import save

        path = Path(path)
        arrays = {k: np.ascontiguousarray(getattr(self, k)) for k in ("histories", "states", "actions", "rewards")}
        atomic_write_bytes(path, save(arrays, metadata={META_KEY: json.dumps(self.meta, sort_keys=True)}))
        atomic_write_json(path.with_name(path.name + ".json"), self.meta)
        return path

    @classmethod
    def load(cls, path: str | Path) -> HistoryDataset:
        from safetensors import SafetensorError, safe_open
        from safetensors.numpy import load_file

        path = Path(path)
        if not path.is_file():
            raise ValueError(f"dataset file {str(path)!r} does not exist")
        try:
            with safe_open(str(path), framework="numpy") as f:
                header = f.metadata() or {}
            arrays = load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise ValueError(f"dataset file {str(path)!r} is not a readable safetensors file: {err}") from None
        if META_KEY not in header:
            raise ValueError(f"{str(path)!r} is not an infozoo history dataset (no {META_KEY!r} metadata)")
        return cls(arrays["histories"], arrays["states"], arrays["actions"], arrays["rewards"],
                   json.loads(header[META_KEY]))


# ---- policies ----------------------------------------------------------------------------------


def random_policy(model: DecPOMDPModel) -> Policy:
    """Uniform random actions (uniform over the Box for continuous actions)."""
    info = model.info

    def policy(obs: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        b, n = obs.shape[:2]
        if info.action_kind == "discrete":
            return rng.integers(0, info.action_dim, size=(b, n))
        low = np.broadcast_to(model.action_low, (info.action_dim,))
        high = np.broadcast_to(model.action_high, (info.action_dim,))
        return rng.uniform(low, high, size=(b, n, info.action_dim))

    policy.action_probs = np.full(info.action_dim, 1.0 / info.action_dim)  # type: ignore[attr-defined]
    return policy


def make_policy(model: DecPOMDPModel, policy: str | Policy) -> tuple[str, Policy]:
    """``(name, callable)`` for ``"random"``, ``"scripted"`` (the env module's ``scripted_policy``)
    or any callable ``policy(obs [B, n, obs_dim], t, rng) -> actions``."""
    if callable(policy):
        return getattr(policy, "__name__", "custom"), policy
    if policy == "random":
        return "random", random_policy(model)
    if policy == "scripted":
        return "scripted", importlib.import_module(type(model).__module__).scripted_policy(model)
    raise ValueError(f"unknown policy {policy!r}; valid: {', '.join(POLICIES)} or a callable")


# ---- collection --------------------------------------------------------------------------------


def history_rows(model: DecPOMDPModel, obs: np.ndarray, prev_actions: np.ndarray | None) -> np.ndarray:
    """The history rows ``[B, n, F]`` for observations ``obs [B, n, obs_dim]`` and the previous
    joint action (``None`` at ``t = 0``): ``[o_{i,t}, a_{i,t-1}]`` as in the dataset."""
    info = model.info
    rows = np.zeros(obs.shape[:2] + (info.obs_dim + info.action_dim,), np.float32)
    rows[..., : info.obs_dim] = obs
    if prev_actions is not None:
        prev = np.asarray(prev_actions)
        rows[..., info.obs_dim:] = np.eye(info.action_dim)[prev] if info.action_kind == "discrete" else prev
    return rows


def model_of(env_id: str, **env_kwargs: Any) -> DecPOMDPModel:
    """The batched model behind a registered Dec-POMDP env id."""
    from infozoo.registry import get, make

    entry = get("env", env_id.removeprefix("infozoo/"))
    if entry.domain != "decpomdp":
        raise ValueError(f"{env_id!r} is not a Dec-POMDP; valid: {', '.join(decpomdp_env_ids())}")
    return make(env_id, **env_kwargs).model


def decpomdp_env_ids() -> list[str]:
    from infozoo.registry import names

    return names("env", "decpomdp")


def metadata(env_id: str, model: DecPOMDPModel) -> dict[str, Any]:
    """The per-env facts stored with a dataset (see the module docstring)."""
    info = model.info
    a_feat = info.action_dim
    return {"env_id": env_id, "env_kwargs": model.to_dict(), "n_agents": info.n_agents,
            "agents": [f"agent_{i}" for i in range(info.n_agents)], "obs_dim": info.obs_dim,
            "action_kind": info.action_kind, "action_dim": info.action_dim, "state_dim": info.state_dim,
            "state_kind": info.state_kind, "n_states": info.n_states,
            "collectively_observable": info.collectively_observable, "max_cycles": info.max_cycles,
            "feature_dim": info.obs_dim + a_feat,
            "feature_slices": {"observation": [0, info.obs_dim],
                               "previous_action": [info.obs_dim, info.obs_dim + a_feat]}}


def collect(env_id: str, episodes: int, policy: str | Policy = "random", seed: int = 0, batch: int = 1000,
            env_kwargs: dict[str, Any] | None = None, model: DecPOMDPModel | None = None) -> HistoryDataset:
    """Roll out ``episodes`` episodes of ``env_id`` under ``policy``; deterministic under ``seed``.

    Episodes run ``batch`` at a time through the env's numpy model; batch ``k`` draws from
    ``np.random.default_rng([seed, k])``, so the data do not depend on anything else.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be a positive integer, got {episodes!r}")
    if batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    model = model or model_of(env_id, **(env_kwargs or {}))
    info = model.info
    name, act = make_policy(model, policy)
    meta = {**metadata(env_id, model), "policy": name, "seed": int(seed), "episodes": int(episodes)}
    if hasattr(act, "action_probs"):
        meta["policy_action_probs"] = np.asarray(act.action_probs).tolist()
    n, t_len, f_dim = info.n_agents, info.max_cycles + 1, meta["feature_dim"]
    hist = np.zeros((episodes, t_len, n, f_dim), np.float32)
    states = np.zeros((episodes, t_len, info.state_dim), np.float32)
    discrete = info.action_kind == "discrete"
    actions = np.zeros((episodes, t_len - 1, n) + (() if discrete else (info.action_dim,)),
                       np.int64 if discrete else np.float32)
    rewards = np.zeros((episodes, t_len - 1, n), np.float32)
    for k, lo in enumerate(progress(range(0, episodes, batch), desc=f"collect {env_id}")):
        hi = min(lo + batch, episodes)
        rng = np.random.default_rng([int(seed), k])
        internal, obs = model.reset(hi - lo, rng)
        hist[lo:hi, 0] = history_rows(model, obs, None)
        states[lo:hi, 0] = model.state_vector(internal)
        for t in range(t_len - 1):
            a = np.asarray(act(obs, t, rng))
            internal, obs, r = model.step(internal, a, rng)
            actions[lo:hi, t] = a
            rewards[lo:hi, t] = r
            hist[lo:hi, t + 1] = history_rows(model, obs, a)
            states[lo:hi, t + 1] = model.state_vector(internal)
    return HistoryDataset(hist, states, actions, rewards, meta)
