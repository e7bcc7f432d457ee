"""The exact denoiser of ``linear-gaussian-v0``: the oracle that checks the composite algorithm
independently of learning (``notes/diffusion-linear-gaussian.md``).

Agent ``i``'s history gives the Gaussian posterior ``s | h_i ~ N(mu_i, Sigma_i)`` (the Kalman filter
on its own observations, ``LinearGaussianModel.posterior``). Under ``x = s + sigma eps`` the
posterior-mean denoiser is

    D_i(x, sigma) = mu_i + Sigma_i (Sigma_i + sigma^2 I)^{-1} (x - mu_i)
                  = mu_i + U diag(lambda / (lambda + sigma^2)) U^T (x - mu_i),   Sigma_i = U diag(lambda) U^T,

with Jacobian ``J_i = Sigma_i (Sigma_i + sigma^2 I)^{-1}``. Eigenvalues below ``rtol * max(lambda, 1)``
count as exactly zero (the directions agent ``i`` observed without noise), so with noiseless
observations ``D_i -> mu_i + P_i (x - mu_i)`` as ``sigma -> 0``, ``P_i`` the projection onto
``range(Sigma_i)``: its fixed points are the affine set ``{s : (I - P_i)(s - mu_i) = 0}`` of states
consistent with ``h_i``. The unconditional denoiser ``D_0`` uses the prior ``N(m_t, P_t)`` of ``s_t``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

EIG_RTOL = 1e-10  # eigenvalues of a posterior covariance below this (relative) count as zero


class ExactDenoiser:
    """Exact Gaussian denoisers ``D_i`` of ``B`` histories (see the module docstring).

    ``mu [B, n, d]``, ``cov [B, n, d, d]`` (or ``[n, d, d]``, shared), ``prior_mean [B, d]`` or ``[d]``,
    ``prior_cov [d, d]`` or ``[B, d, d]``. Works in float64."""

    def __init__(self, mu: Any, cov: Any, prior_mean: Any, prior_cov: Any, rtol: float = EIG_RTOL) -> None:
        mu = torch.as_tensor(np.asarray(mu), dtype=torch.float64)
        if mu.ndim != 3:
            raise ValueError(f"mu must have shape [B, n, d], got {tuple(mu.shape)}")
        b, n, d = mu.shape
        cov = torch.as_tensor(np.asarray(cov), dtype=torch.float64).expand(b, n, d, d)
        self.mu, self.cov = mu, cov
        self.prior_mean = torch.as_tensor(np.asarray(prior_mean), dtype=torch.float64).expand(b, d)
        self.prior_cov = torch.as_tensor(np.asarray(prior_cov), dtype=torch.float64).expand(b, d, d)
        self.n_agents, self.state_dim, self.batch_size, self.dtype = n, d, b, torch.float64
        self.rtol = rtol
        self._lam, self._u = _eig(torch.cat([cov, self.prior_cov[:, None]], dim=1), rtol)  # [B, n+1, d(, d)]

    def __call__(self, agent: int | None, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        j = self.n_agents if agent is None else int(agent)
        mean = self.prior_mean if agent is None else self.mu[:, j]
        lam, u = self._lam[:, j], self._u[:, j]
        s2 = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1) ** 2
        w = torch.where(lam > 0, lam / (lam + s2), torch.zeros_like(lam))
        coef = torch.einsum("bdk,bd->bk", u, x.to(torch.float64) - mean)
        return mean + torch.einsum("bdk,bk->bd", u, w * coef)

    def repeat(self, k: int) -> ExactDenoiser:
        r = lambda t: t.repeat_interleave(k, dim=0)  # noqa: E731
        out = ExactDenoiser.__new__(ExactDenoiser)
        out.__dict__.update(self.__dict__)
        out.mu, out.cov, out.prior_mean, out.prior_cov = r(self.mu), r(self.cov), r(self.prior_mean), r(self.prior_cov)
        out._lam, out._u = r(self._lam), r(self._u)
        out.batch_size = self.batch_size * k
        return out

    def jacobian(self, agent: int | None, sigma: float) -> torch.Tensor:
        """``J_i = Sigma_i (Sigma_i + sigma^2 I)^{-1}``, ``[B, d, d]`` (the same at every ``x``)."""
        j = self.n_agents if agent is None else int(agent)
        lam, u = self._lam[:, j], self._u[:, j]
        w = torch.where(lam > 0, lam / (lam + sigma**2), torch.zeros_like(lam))
        return torch.einsum("bdk,bk,bek->bde", u, w, u)

    def projection(self, agent: int) -> torch.Tensor:
        """``P_i`` ``[B, d, d]``: the projection onto ``range(Sigma_i)`` (what agent ``i`` does not know)."""
        lam, u = self._lam[:, agent], self._u[:, agent]
        return torch.einsum("bdk,bk,bek->bde", u, (lam > 0).to(u.dtype), u)

    def unknown_dims(self, agent: int) -> torch.Tensor:
        """``rank(Sigma_i)`` per history ``[B]``: the dimension of the set of states consistent with ``h_i``."""
        return (self._lam[:, agent] > 0).sum(-1)

    def affine_distance(self, agent: int, x: torch.Tensor) -> torch.Tensor:
        """``||(I - P_i)(x - mu_i)||`` ``[B]``: the distance of ``x`` to agent ``i``'s consistent set
        (the affine set ``mu_i + range(Sigma_i)``; with noisy observations ``range(Sigma_i)`` is
        everything and the distance is 0)."""
        r = x.to(torch.float64) - self.mu[:, agent]
        return (r - torch.einsum("bde,be->bd", self.projection(agent), r)).norm(dim=-1)


def _eig(cov: torch.Tensor, rtol: float) -> tuple[torch.Tensor, torch.Tensor]:
    sym = 0.5 * (cov + cov.transpose(-1, -2))
    lam, u = torch.linalg.eigh(sym)
    scale = lam.abs().amax(-1, keepdim=True).clamp(min=1.0)
    return torch.where(lam > rtol * scale, lam, torch.zeros_like(lam)), u


def prior_moments(model: Any, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of ``s_t`` before any observation: ``m_t = A^t m0``, ``P_t = A P_{t-1} A^T + Q``."""
    m, p = np.asarray(model.m0, float), np.asarray(model.P0, float)
    for _ in range(t):
        m, p = model.A @ m, model.A @ p @ model.A.T + model.Q
    return m, p


def exact_denoiser(model: Any, observations: np.ndarray, t: int = -1) -> ExactDenoiser:
    """The exact denoisers of every agent at step ``t`` of ``observations [B, T, n, k]``
    (a dataset's ``observations``) for a ``LinearGaussianModel``."""
    obs = np.asarray(observations, dtype=np.float64)
    if obs.ndim != 4 or obs.shape[2] != model.n_agents:
        raise ValueError(f"observations must have shape [B, T, {model.n_agents}, k], got {obs.shape}")
    t_len = obs.shape[1]
    t = t % t_len
    obs = obs[:, : t + 1]
    mus, covs = [], []
    for i in range(model.n_agents):
        m, c = model.posterior(obs, [i])
        mus.append(m[:, t])
        covs.append(c[t])
    m0, p0 = prior_moments(model, t)
    return ExactDenoiser(np.stack(mus, 1), np.stack(covs, 0), m0, p0)
