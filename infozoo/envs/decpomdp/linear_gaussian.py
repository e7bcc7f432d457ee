"""The linear-Gaussian Dec-POMDP: the case where every posterior is exact (a Kalman filter).

Model (all matrices are attributes of ``LinearGaussianModel``):

    s_0 ~ N(m0, P0),   s_{t+1} = A s_t + w_t,  w_t ~ N(0, Q),
    y_{i,t} = C_i s_t + v_{i,t},  v_{i,t} ~ N(0, R_i)      (R_i = 0 is allowed: noiseless)

``kalman_filter`` gives the exact posterior N(mu_t, Sigma_t) of s_t given y_{0..t} of one agent
(``C = C_i``) or of all agents (``C`` = the stacked ``C_i``); the means depend on the data, the
covariances do not (they are returned once for the whole batch).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from infozoo.envs.decpomdp.base import DecPOMDPEnv, DecPOMDPModel, ModelInfo, check_float, check_positive_int

PINV_RTOL = 1e-10  # relative singular-value cut-off of the pseudo-inverses in the filter


def observed_coordinates(dim: int, n_agents: int, co: bool) -> list[list[int]]:
    """Which state coordinates each agent observes: blocks of ``k = ceil(dim / n)`` coordinates.

    ``co=True``: agent ``i`` sees ``{(i k + j) mod dim}``, so together they see every coordinate.
    ``co=False``: the same blocks taken ``mod (dim - 1)``, so nobody ever sees the last one.
    """
    k = -(-dim // n_agents)
    base = dim if co else dim - 1
    return [sorted({(i * k + j) % base for j in range(k)}) for i in range(n_agents)]


class LinearGaussianModel(DecPOMDPModel):
    """Batched simulator and exact matrices of ``linear-gaussian-v0`` (see ``LinearGaussianEnv``).

    Attributes: ``A [d, d]``, ``Q [d, d]`` (process noise covariance), ``C`` (list of ``[k_i, d]``),
    ``R`` (list of ``[k_i, k_i]``), ``m0 [d]``, ``P0 [d, d]``, and the stacked ``C_joint``,
    ``R_joint`` (block diagonal). Observation noise may be zero.
    """

    def __init__(self, dim: int = 4, n_agents: int = 2, co: bool = True, rho: float = 0.95,
                 obs_noise: float = 0.1, process_noise: float | None = None, max_cycles: int = 10) -> None:
        self.dim = check_positive_int("dim", dim, minimum=2)
        self.n_agents = check_positive_int("n_agents", n_agents)
        if self.n_agents > self.dim:
            raise ValueError(f"n_agents must be at most dim={self.dim}, got {n_agents}")
        if not isinstance(co, bool | np.bool_):
            raise ValueError(f"co must be True or False, got {co!r}")
        self.co = bool(co)
        self.rho = check_float("rho", rho, -1.0, 1.0)
        self.obs_noise = check_float("obs_noise", obs_noise, 0.0)
        # default process noise keeps the state stationary: Cov(s_t) = I for every t
        self.process_noise = (float(np.sqrt(1.0 - self.rho**2)) if process_noise is None
                              else check_float("process_noise", process_noise, 0.0))
        self.max_cycles = check_positive_int("max_cycles", max_cycles)
        d = self.dim
        self.coords = observed_coordinates(d, self.n_agents, self.co)
        k = len(self.coords[0])
        self.A = self.rho * np.eye(d)
        self.Q = self.process_noise**2 * np.eye(d)
        self.C = [np.eye(d)[c] for c in self.coords]
        self.R = [self.obs_noise**2 * np.eye(k) for _ in self.coords]
        self.m0 = np.zeros(d)
        self.P0 = np.eye(d)
        self.C_joint = np.concatenate(self.C, axis=0)
        self.R_joint = self.obs_noise**2 * np.eye(self.C_joint.shape[0])
        co_rank = np.linalg.matrix_rank(self.C_joint) == d
        self.info = ModelInfo(n_agents=self.n_agents, obs_dim=k, action_kind="continuous", action_dim=d,
                              state_dim=d, state_kind="continuous", collectively_observable=bool(co_rank),
                              max_cycles=self.max_cycles)
        self.action_low, self.action_high = -5.0, 5.0

    def to_dict(self) -> dict[str, Any]:
        return {"dim": self.dim, "n_agents": self.n_agents, "co": self.co, "rho": self.rho,
                "obs_noise": self.obs_noise, "process_noise": self.process_noise, "max_cycles": self.max_cycles}

    def observe(self, s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        y = np.stack([s @ c.T for c in self.C], axis=1)  # [B, n, k]
        if self.obs_noise > 0:
            y = y + self.obs_noise * rng.standard_normal(y.shape)
        return y

    def reset(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s = self.m0 + rng.standard_normal((batch, self.dim)) @ np.linalg.cholesky(self.P0).T
        return s, self.observe(s, rng)

    def step(self, s: np.ndarray, actions: np.ndarray, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rewards = -((actions - s[:, None, :]) ** 2).mean(-1)  # each agent guesses the state
        s = s @ self.A.T + self.process_noise * rng.standard_normal(s.shape)
        return s, self.observe(s, rng), rewards

    def state_vector(self, s: np.ndarray) -> np.ndarray:
        return s

    def agent_matrices(self, agents: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(C, R)`` of the observations of ``agents`` stacked (``None``: all agents)."""
        agents = list(range(self.n_agents)) if agents is None else agents
        c = np.concatenate([self.C[i] for i in agents], axis=0)
        return c, self.obs_noise**2 * np.eye(c.shape[0])

    def posterior(self, obs: np.ndarray, agents: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Exact posterior of ``s_t`` given ``y_{0..t}`` of ``agents`` (``None``: the joint history).

        ``obs`` is ``[B, T, n, k]`` (the dataset's ``observations``). Returns means ``[B, T, d]``
        and covariances ``[T, d, d]``."""
        agents = list(range(self.n_agents)) if agents is None else agents
        c, r = self.agent_matrices(agents)
        y = obs[:, :, agents, :].reshape(obs.shape[0], obs.shape[1], -1)
        return kalman_filter(y, self.A, self.Q, c, r, self.m0, self.P0)


def kalman_filter(y: np.ndarray, A: np.ndarray, Q: np.ndarray, C: np.ndarray, R: np.ndarray,
                  m0: np.ndarray, P0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Filtered means ``[B, T, d]`` and covariances ``[T, d, d]`` of ``s_t | y_{0..t}``.

    Update (robust to singular ``S`` and ``R = 0``): ``S = C P C^T + R``, ``K = P C^T S^+``,
    ``mu <- mu + K (y - C mu)``, Joseph form ``P <- (I - K C) P (I - K C)^T + K R K^T``.
    Predict: ``mu <- A mu``, ``P <- A P A^T + Q``.
    """
    y = np.asarray(y, dtype=np.float64)
    b, t_len, _ = y.shape
    d = A.shape[0]
    eye = np.eye(d)
    mu = np.broadcast_to(m0, (b, d)).astype(np.float64).copy()
    p = np.asarray(P0, dtype=np.float64).copy()
    means = np.empty((b, t_len, d))
    covs = np.empty((t_len, d, d))
    for t in range(t_len):
        if t > 0:
            mu = mu @ A.T
            p = A @ p @ A.T + Q
        s = C @ p @ C.T + R
        k = p @ C.T @ np.linalg.pinv(0.5 * (s + s.T), rtol=PINV_RTOL, hermitian=True)
        mu = mu + (y[:, t] - mu @ C.T) @ k.T
        ikc = eye - k @ C
        p = ikc @ p @ ikc.T + k @ R @ k.T
        p = 0.5 * (p + p.T)
        means[:, t] = mu
        covs[t] = p
    return means, covs


def scripted_policy(model: LinearGaussianModel):
    """Guess the state by least squares from the current observation: ``a_i = C_i^+ y_i``."""
    pinvs = np.stack([np.linalg.pinv(c) for c in model.C])  # [n, d, k]

    def policy(obs: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        return np.clip(np.einsum("ndk,bnk->bnd", pinvs, obs), model.action_low, model.action_high)

    return policy


class LinearGaussianEnv(DecPOMDPEnv):
    """## Description

    A continuous state ``s in R^dim`` follows ``s' = A s + w`` with ``A = rho I`` and
    ``w ~ N(0, (1 - rho^2) I)`` (stationary: ``s_t ~ N(0, I)`` at every ``t``). Agent ``i``
    observes ``y_i = C_i s + v_i`` where ``C_i`` selects ``ceil(dim / n_agents)`` coordinates and
    ``v_i ~ N(0, obs_noise^2 I)`` (``obs_noise=0`` gives noiseless observations). With ``co=True``
    the stacked ``C`` has full rank: the joint observation identifies the state (exactly when
    noiseless), so the problem is **collectively observable**; with ``co=False`` the last
    coordinate is never observed by anyone. Every posterior is Gaussian and exact:
    ``LinearGaussianModel.posterior`` (a Kalman filter), the oracle of the diffusion notes.

    ## Agents

    ``agent_0`` ... ``agent_{n_agents-1}``.

    ## Observation

    ``Box(-inf, inf, (k,), float32)`` with ``k = ceil(dim / n_agents)``: ``y_i``.

    ## Action

    ``Box(-5, 5, (dim,), float32)``: the agent's guess of the current state. Actions do not
    change the dynamics, so every posterior is independent of the policy.

    ## Rewards

    ``-mean((a_i - s_t)^2)``: the agent's own squared estimation error.

    ## Episode End

    Every episode lasts ``max_cycles`` steps (default 10). ``state()`` is ``s`` (``dim`` numbers).

    ## Arguments

    ``dim=4``, ``n_agents=2``, ``co=True``, ``rho=0.95``, ``obs_noise=0.1`` (0 allowed),
    ``process_noise=None`` (``sqrt(1 - rho^2)``), ``max_cycles=10``,
    ``render_mode=None | "ansi" | "human"``.

    >>> import infozoo
    >>> env = infozoo.make("linear-gaussian-v0", obs_noise=0.0)
    >>> obs, infos = env.reset(seed=0)
    >>> obs, rewards, terms, truncs, infos = env.step({a: [0.0] * 4 for a in env.agents})

    ## Version History

    - v0: initial release.
    """

    metadata = {"name": "linear_gaussian_v0", "render_modes": ["ansi", "human"], "is_parallelizable": True,
                "collectively_observable": True}

    def __init__(self, dim: int = 4, n_agents: int = 2, co: bool = True, rho: float = 0.95, obs_noise: float = 0.1,
                 process_noise: float | None = None, max_cycles: int = 10, render_mode: str | None = None) -> None:
        model = LinearGaussianModel(dim, n_agents, co, rho, obs_noise, process_noise, max_cycles)
        self.metadata = {**self.metadata, "collectively_observable": model.info.collectively_observable}
        super().__init__(model, render_mode)
