"""Exact posteriors of the state given one agent's history or the joint history: the Bayes floor.

For a dataset of histories (``infozoo.envs.decpomdp.histories``) ``posterior(data, agents)``
returns the exact filtering posterior ``p(s_t | h_{agents, 0..t})`` for every episode and step:

- ``dec-tiger-v0``: a two-state belief. Jointly, ``b'(s') ∝ [both listened] b(s') prod_i
  P(o_i | s') + [a door opened] 1/2``. One agent alone does not see the other's action; if the
  data's policy is history-independent with known action law ``q`` (``meta["policy_action_probs"]``,
  true of the random and scripted policies), the other's action is independent noise and
  ``P(s', o_i | b, listen) = q_L b(s') P(o_i | s') + (1 - q_L) / 4`` is exact.
- ``sensor-grid-v0``: a belief over *labelled* prey positions, a tensor of ``C^{n_prey}`` cells
  (91,125 for the default 45 cells and 3 prey). Prey move independently, so the prediction applies
  the one-prey transition along each axis; an observation keeps the tuples whose patch counts
  match. Tractable up to ``MAX_SENSOR_STATES`` tuples; larger grids raise ``ValueError``.
- ``linear-gaussian-v0``: the Kalman filter of ``LinearGaussianModel.posterior``.
- ``spread-po-v0``: nonlinear continuous dynamics, no exact filter (``ValueError``).

The posterior mean is the MSE-optimal reconstruction, so ``bayes_floor`` (its MSE against the true
states) is the lowest error any reconstructor can reach on the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from infozoo.envs.decpomdp.histories import HistoryDataset

MAX_SENSOR_STATES = 250_000  # largest labelled-prey belief (cells ** n_prey) the sensor filter handles


@dataclass
class Posterior:
    """Posterior of ``s_t`` given the history up to ``t``, for every episode and step.

    ``mean [N, T, state_dim]`` (the posterior mean of the state vector); ``probs [N, T, n_states]``
    for small discrete state spaces (dec-tiger); ``cov [T, d, d]`` for the Kalman filter (the same
    for every episode)."""

    mean: np.ndarray
    probs: np.ndarray | None = None
    cov: np.ndarray | None = None


def tractable(env_id: str, env_kwargs: dict[str, Any] | None = None) -> bool:
    """Whether ``posterior`` has an exact filter for this env and these arguments."""
    env_id = env_id.removeprefix("infozoo/")
    if env_id in ("dec-tiger-v0", "linear-gaussian-v0"):
        return True
    if env_id == "sensor-grid-v0":
        kw = {"rows": 5, "cols": 9, "n_prey": 3, **(env_kwargs or {})}
        return (kw["rows"] * kw["cols"]) ** kw["n_prey"] <= MAX_SENSOR_STATES
    return False


def posterior(data: HistoryDataset, agents: list[int] | None = None, chunk: int = 64) -> Posterior:
    """The exact posterior given the histories of ``agents`` (``None``: the joint history)."""
    from infozoo.envs.decpomdp.histories import model_of

    env_id = data.meta["env_id"].removeprefix("infozoo/")
    model = model_of(env_id, **data.meta["env_kwargs"])
    n = model.info.n_agents
    agents = list(range(n)) if agents is None else list(agents)
    if not agents or any(not 0 <= i < n for i in agents):
        raise ValueError(f"agents must be a non-empty list of indices in [0, {n}), got {agents}")
    if env_id == "linear-gaussian-v0":
        mean, cov = model.posterior(data.observations.astype(np.float64), agents)
        return Posterior(mean, cov=cov)
    if env_id == "dec-tiger-v0":
        probs = _tiger(model, data, agents)
        return Posterior(probs, probs=probs)
    if env_id == "sensor-grid-v0":
        if not tractable(env_id, data.meta["env_kwargs"]):
            raise ValueError(f"sensor-grid belief has {model.n_cells}^{model.n_prey} labelled states, more than "
                             f"{MAX_SENSOR_STATES}: no exact filter; use fewer prey or a smaller grid")
        means = [_sensor(model, data.subset(slice(lo, lo + chunk)), agents) for lo in range(0, len(data), chunk)]
        return Posterior(np.concatenate(means, axis=0))
    raise ValueError(f"no exact Bayes filter for {env_id!r} (nonlinear continuous dynamics); exact filters exist "
                     "for: dec-tiger-v0, linear-gaussian-v0, sensor-grid-v0")


def bayes_floor(data: HistoryDataset, agents_each: bool = True) -> dict[str, Any]:
    """MSE of the exact posterior mean against the true states: joint and per agent.

    Returns ``joint_mse``, ``joint_mse_final`` (last step only), ``agent_mse`` (mean over agents),
    ``agent_mse_each`` and, for discrete states with ``n_states``, ``*_accuracy`` of the MAP state."""
    out: dict[str, Any] = {}
    joint = posterior(data)
    out.update(_metrics(joint.mean, data, "joint"))
    if agents_each:
        each = [_metrics(posterior(data, [i]).mean, data, "agent") for i in range(data.meta["n_agents"])]
        out["agent_mse_each"] = [e["agent_mse"] for e in each]
        for key in each[0]:
            out[key] = float(np.mean([e[key] for e in each]))
    return out


def _metrics(mean: np.ndarray, data: HistoryDataset, prefix: str) -> dict[str, float]:
    err = (mean - data.states) ** 2
    out = {f"{prefix}_mse": float(err.mean()), f"{prefix}_mse_final": float(err[:, -1].mean())}
    if data.meta.get("n_states"):
        out[f"{prefix}_accuracy"] = float((mean.argmax(-1) == data.states.argmax(-1)).mean())
    return out


# ---- dec-tiger ---------------------------------------------------------------------------------


def _tiger(model: Any, data: HistoryDataset, agents: list[int]) -> np.ndarray:
    from infozoo.envs.decpomdp.dec_tiger import LISTEN

    obs = data.observations  # [N, T, 2, 2]; one-hot of the side heard
    acts = data.actions  # [N, T-1, 2]
    acc = model.listen_accuracy
    n_ep, t_len = obs.shape[:2]
    b = np.full((n_ep, 2), 0.5)
    out = np.empty((n_ep, t_len, 2))
    out[:, 0] = b
    joint = len(agents) == 2
    if not joint and "policy_action_probs" not in data.meta:
        raise ValueError("the per-agent dec-tiger filter needs a history-independent policy with known action "
                         "probabilities (meta['policy_action_probs']; the random and scripted policies have them)")
    q_listen = 1.0 if joint else float(data.meta["policy_action_probs"][LISTEN])
    for t in range(t_len - 1):
        heard = obs[:, t + 1].argmax(-1)  # [N, 2]
        lik = np.where(heard[:, :, None] == np.arange(2), acc, 1 - acc)  # [N, agent, s']
        own_listen = (acts[:, t, agents] == LISTEN).all(1)
        if joint:
            post = b * lik[:, 0] * lik[:, 1]
            post = post / post.sum(1, keepdims=True)
            b = np.where(own_listen[:, None], post, 0.5)
        else:
            i = agents[0]
            post = q_listen * b * lik[:, i] + (1 - q_listen) * 0.25
            post = post / post.sum(1, keepdims=True)
            b = np.where(own_listen[:, None], post, 0.5)
        out[:, t + 1] = b
    return out


# ---- sensor grid -------------------------------------------------------------------------------


def _sensor(model: Any, data: HistoryDataset, agents: list[int], dtype: type = np.float64) -> np.ndarray:
    """Posterior mean of the occupancy grid from a belief over labelled prey tuples."""
    c, k = model.n_cells, model.n_prey
    base = k + 1
    obs = np.rint(data.observations[..., :9]).astype(np.int64)  # [N, T, n, 9] patch counts
    # code of one prey at cell x seen by agent i: base ** (its patch position), 0 outside the patch
    weights = np.zeros((len(agents), c), np.int64)
    for a, i in enumerate(agents):
        for pos, cell in enumerate(model.patch_cells[i]):
            if cell >= 0:
                weights[a, cell] = base**pos
    codes = []  # per agent: the observation code of every labelled tuple, shape [C] * k
    for a in range(len(agents)):
        code = np.zeros((c,) * k, np.int64)
        for axis in range(k):
            shape = [1] * k
            shape[axis] = c
            code = code + weights[a].reshape(shape)
        codes.append(code)
    powers = base ** np.arange(9)
    n_ep, t_len = obs.shape[:2]
    transition = model.transition.astype(dtype)
    belief = np.full((n_ep,) + (c,) * k, 1.0 / c**k, dtype=dtype)
    out = np.empty((n_ep, t_len, c))
    for t in range(t_len):
        if t > 0:  # one matmul on the last axis, then rotate the axes; k rotations restore the order
            for _ in range(k):
                belief = (belief.reshape(-1, c) @ transition).reshape((n_ep,) + (c,) * k)
                belief = np.ascontiguousarray(np.moveaxis(belief, -1, 1))
        for a, i in enumerate(agents):
            seen = obs[:, t, i] @ powers  # [N]
            belief = belief * (codes[a][None] == seen.reshape((n_ep,) + (1,) * k))
        total = belief.reshape(n_ep, -1).sum(1)
        if np.any(total <= 0):
            raise ValueError("an observation has zero probability under the sensor-grid model; "
                             "the dataset does not come from this env's arguments")
        belief = belief / total.reshape((n_ep,) + (1,) * k)
        occ = np.zeros((n_ep, c))
        for axis in range(1, k + 1):
            occ += belief.sum(axis=tuple(x for x in range(1, k + 1) if x != axis))
        out[:, t] = occ
    return out
