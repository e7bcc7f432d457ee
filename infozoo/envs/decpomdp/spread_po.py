"""mpe2's ``simple_spread`` with a limited view radius (needs the optional ``mpe2`` package)."""

from __future__ import annotations

from typing import Any

import numpy as np

from infozoo.envs.decpomdp.base import DecPOMDPEnv, DecPOMDPModel, ModelInfo, check_float, check_positive_int


def _scenario() -> Any:
    try:
        from mpe2.simple_spread.simple_spread import Scenario
    except ImportError:
        raise ImportError("spread-po-v0 needs the optional package mpe2: pip install mpe2") from None
    return Scenario


class SpreadPOModel(DecPOMDPModel):
    """``B`` mpe2 ``simple_spread`` worlds stepped side by side (see ``SpreadPOEnv``).

    The physics is mpe2's own (``World.step``); observations are recomputed with the view radius.
    The internal state is the list of worlds.
    """

    def __init__(self, N: int = 3, view_radius: float = 0.8, local_ratio: float = 0.5, max_cycles: int = 25) -> None:
        self.N = check_positive_int("N", N, minimum=2)
        self.view_radius = check_float("view_radius", view_radius, 0.0)
        self.local_ratio = check_float("local_ratio", local_ratio, 0.0, 1.0)
        self.max_cycles = check_positive_int("max_cycles", max_cycles)
        self.scenario = _scenario()()
        self._spare: list[Any] = []
        n = self.N
        self.info = ModelInfo(n_agents=n, obs_dim=4 + 3 * n + 3 * (n - 1), action_kind="discrete", action_dim=5,
                              state_dim=6 * n, state_kind="continuous", collectively_observable=False,
                              max_cycles=self.max_cycles)

    def to_dict(self) -> dict[str, Any]:
        return {"N": self.N, "view_radius": self.view_radius, "local_ratio": self.local_ratio,
                "max_cycles": self.max_cycles}

    def reset(self, batch: int, rng: np.random.Generator) -> tuple[list[Any], np.ndarray]:
        while len(self._spare) < batch:
            self._spare.append(self.scenario.make_world(self.N))
        worlds = self._spare[:batch]
        for w in worlds:
            self.scenario.reset_world(w, rng)
        return worlds, self.observe(worlds)

    def _arrays(self, worlds: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.array([[a.state.p_pos for a in w.agents] for w in worlds])  # [B, N, 2]
        vel = np.array([[a.state.p_vel for a in w.agents] for w in worlds])
        lm = np.array([[lm.state.p_pos for lm in w.landmarks] for w in worlds])
        return pos, vel, lm

    def observe(self, worlds: list[Any]) -> np.ndarray:
        pos, vel, lm = self._arrays(worlds)
        b, n = pos.shape[:2]
        rel_lm = lm[:, None, :, :] - pos[:, :, None, :]  # [B, N agents, N landmarks, 2]
        rel_ag = pos[:, None, :, :] - pos[:, :, None, :]  # [B, N, N, 2]
        others = ~np.eye(n, dtype=bool)
        rel_ag = rel_ag[:, others].reshape(b, n, n - 1, 2)
        see_lm = (np.linalg.norm(rel_lm, axis=-1) <= self.view_radius)[..., None]
        see_ag = (np.linalg.norm(rel_ag, axis=-1) <= self.view_radius)[..., None]
        lm_part = np.concatenate([see_lm, rel_lm * see_lm], -1).reshape(b, n, -1)
        ag_part = np.concatenate([see_ag, rel_ag * see_ag], -1).reshape(b, n, -1)
        return np.concatenate([vel, pos, lm_part, ag_part], axis=-1)

    def step(self, worlds: list[Any], actions: np.ndarray, rng: np.random.Generator
             ) -> tuple[list[Any], np.ndarray, np.ndarray]:
        push = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.float64)
        rewards = np.empty((len(worlds), self.N))
        for b, w in enumerate(worlds):
            for i, agent in enumerate(w.agents):
                agent.action.u = push[actions[b, i]] * (agent.accel if agent.accel is not None else 5.0)
                agent.action.c = np.zeros(w.dim_c)
            w.step()
            team = float(self.scenario.global_reward(w))
            for i, agent in enumerate(w.agents):
                local = float(self.scenario.reward(agent, w))
                rewards[b, i] = team * (1 - self.local_ratio) + local * self.local_ratio
        return worlds, self.observe(worlds), rewards

    def state_vector(self, worlds: list[Any]) -> np.ndarray:
        pos, vel, lm = self._arrays(worlds)
        b = pos.shape[0]
        return np.concatenate([pos.reshape(b, -1), vel.reshape(b, -1), lm.reshape(b, -1)], axis=1)

    def render_text(self, worlds: list[Any]) -> str:
        pos, vel, lm = self._arrays(worlds[:1])
        lines = [f"agent_{i} at {np.round(p, 2).tolist()}" for i, p in enumerate(pos[0])]
        lines += [f"landmark {j} at {np.round(p, 2).tolist()}" for j, p in enumerate(lm[0])]
        return "\n".join(lines)


def scripted_policy(model: SpreadPOModel):
    """Head for the nearest visible landmark (a random move when none is in view)."""
    n = model.N

    def policy(obs: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        lm = obs[..., 4: 4 + 3 * n].reshape(*obs.shape[:2], n, 3)
        seen, rel = lm[..., 0] > 0, lm[..., 1:]
        dist = np.where(seen, np.linalg.norm(rel, axis=-1), np.inf)
        target = np.take_along_axis(rel, dist.argmin(-1)[..., None, None], axis=2)[..., 0, :]
        horizontal = np.abs(target[..., 0]) >= np.abs(target[..., 1])
        act = np.where(horizontal, np.where(target[..., 0] < 0, 1, 2), np.where(target[..., 1] < 0, 3, 4))
        return np.where(seen.any(-1), act, rng.integers(0, 5, size=act.shape)).astype(np.int64)

    return policy


class SpreadPOEnv(DecPOMDPEnv):
    """## Description

    mpe2's ``simple_spread`` (cooperative navigation: ``N`` agents must cover ``N`` landmarks
    without colliding), made partially observable: each agent sees the landmarks and the other
    agents only within ``view_radius`` of itself. The physics and rewards are mpe2's own. A
    landmark that no agent ever comes near is never observed, so the problem is **not
    collectively observable** in general.

    ## Agents

    ``agent_0`` ... ``agent_{N-1}``.

    ## Observation

    ``Box(-inf, inf, (4 + 3N + 3(N-1),), float32)``: own velocity (2) and position (2); then for
    each landmark a visibility flag and its position relative to the agent (zeros when out of
    view); then the same for each other agent, in index order.

    ## Action

    ``Discrete(5)``: no-op, left, right, down, up (mpe2's discrete actions).

    ## Rewards

    mpe2's: ``(1 - local_ratio) * (-sum over landmarks of the closest agent's distance)
    + local_ratio * (-1 per collision of this agent)``.

    ## Episode End

    Every episode lasts ``max_cycles`` steps (default 25). ``state()`` is all agent positions
    (2N), agent velocities (2N) and landmark positions (2N), not the concatenated observations.

    ## Arguments

    ``N=3``, ``view_radius=0.8``, ``local_ratio=0.5``, ``max_cycles=25``,
    ``render_mode=None | "ansi" | "human"``.

    >>> import infozoo
    >>> env = infozoo.make("spread-po-v0", view_radius=0.5)
    >>> obs, infos = env.reset(seed=0)
    >>> obs, rewards, terms, truncs, infos = env.step({a: 0 for a in env.agents})

    ## Version History

    - v0: initial release.
    """

    metadata = {"name": "spread_po_v0", "render_modes": ["ansi", "human"], "is_parallelizable": True,
                "collectively_observable": False}

    def __init__(self, N: int = 3, view_radius: float = 0.8, local_ratio: float = 0.5, max_cycles: int = 25,
                 render_mode: str | None = None) -> None:
        super().__init__(SpreadPOModel(N, view_radius, local_ratio, max_cycles), render_mode)
