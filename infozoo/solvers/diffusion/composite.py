"""Sampling, fixed points and the composite flow over agents' denoisers.

Everything here works on a *bound denoiser*: the agents' denoisers already conditioned on a batch
of ``B`` histories (``Denoiser`` protocol below), whether learned (``model.BoundDenoiser``) or
exact (``exact.ExactDenoiser``). Corruption is variance exploding, ``x = s + sigma * eps``, and a
denoiser returns ``D_i(x, sigma) = E[s | x, h_i]`` (Karras et al. 2022, "EDM"). By Tweedie's
formula its score is ``grad log p_sigma(x | h_i) = (D_i(x, sigma) - x) / sigma^2``.

1. **Ancestral sampling** from ``p(s | h_i)`` (``sample`` with one agent): from
   ``x ~ N(0, sigma_max^2 I)``, for each step ``sigma_t -> sigma_{t+1}`` of a decreasing schedule
   draw ``x`` from the Gaussian bridge ``q(x_{t+1} | x_t, s = D(x_t, sigma_t))``:
   mean ``D + (sigma_{t+1}^2 / sigma_t^2)(x_t - D)``, variance
   ``sigma_{t+1}^2 (sigma_t^2 - sigma_{t+1}^2) / sigma_t^2`` (the DDPM ancestral step written for
   a variance-exploding process); the last step returns ``D``.
2. **Fixed-point iteration** of one agent's denoiser at a small ``sigma``: ``x <- D_i(x, sigma)``.
   The paper's first observation: the states consistent with ``h_i`` are stable fixed points (in
   the noiseless linear-Gaussian case ``D_i -> mu_i + P_i (x - mu_i)``, a projection onto the
   affine set of consistent states, see ``notes/diffusion-linear-gaussian.md``).
3. **Composite flow** (the paper's composite diffusion process, iterating over agents):
   ``x <- D_n(... D_2(D_1(x, sigma_k), sigma_k) ..., sigma_k)`` for a decreasing schedule
   ``sigma_1 > ... > sigma_K = sigma_min``, then further sweeps at ``sigma_min`` until the change
   of a sweep is below ``tol`` (the stopping rule) or ``max_sweeps`` is reached. Each ``D_i``
   pulls ``x`` onto the states agent ``i`` deems possible; alternating such maps converges to the
   states all agents deem possible, the true state under collective observability (alternating
   projections, von Neumann / Halperin). The result carries the diagnostics: per-sweep change,
   per-sample sweeps to converge, stop reason, optionally the error per sweep and the trajectory.
4. **Composite sampling** for the non-CO case (``sample`` with several agents): the score of
   ``p(s | h_1..h_n) ∝ prod_i p(s | h_i) / p(s)^{n-1}`` (exact when the local histories are
   conditionally independent given the state) is ``sum_i score_i - (n - 1) score_0``, i.e. the
   joint denoiser ``D = sum_i D_i - (n - 1) D_0`` with ``D_0`` the unconditional (prior)
   denoiser, used in the ancestral sampler. The shared fixed points of the agents' denoisers
   are then visited with the joint posterior's weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import torch


class Denoiser(Protocol):
    """Agents' denoisers conditioned on a batch of ``B`` histories.

    ``den(i, x [B, d], sigma) -> [B, d]`` is ``D_i(x, sigma) = E[s | x, h_i]``; ``i = None`` is
    the unconditional denoiser ``D_0 = E[s | x]`` (the prior). ``repeat(k)`` repeats every history
    ``k`` times (row ``b * k + j`` is history ``b``), for ``k`` samples per history.
    ``batch_size`` is ``B``; ``dtype`` the dtype of ``x``.
    """

    n_agents: int
    state_dim: int
    batch_size: int
    dtype: torch.dtype

    def __call__(self, agent: int | None, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor: ...

    def repeat(self, k: int) -> Denoiser: ...


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> list[float]:
    """The EDM schedule ``sigma_k = (s_max^(1/rho) + k/(K-1) (s_min^(1/rho) - s_max^(1/rho)))^rho``,
    ``K = steps`` values from ``sigma_max`` down to ``sigma_min``."""
    if steps < 1 or not 0 < sigma_min <= sigma_max:
        raise ValueError(f"need steps >= 1 and 0 < sigma_min <= sigma_max, got {steps}, {sigma_min}, {sigma_max}")
    if steps == 1:
        return [float(sigma_min)]
    a, b = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return [float((a + k / (steps - 1) * (b - a)) ** rho) for k in range(steps)]


def joint_denoise(den: Denoiser, x: torch.Tensor, sigma: float, agents: list[int]) -> torch.Tensor:
    """``D_i`` for one agent; ``sum_i D_i - (n - 1) D_0`` (product of experts) for several."""
    if len(agents) == 1:
        return den(agents[0], x, sigma)
    out = sum(den(i, x, sigma) for i in agents)
    return out - (len(agents) - 1) * den(None, x, sigma)


@torch.no_grad()
def sample(den: Denoiser, k: int, agents: list[int] | None = None, steps: int = 40, sigma_min: float = 0.01,
           sigma_max: float = 10.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """``k`` ancestral samples per history, ``[B, k, d]``: of ``p(s | h_i)`` for ``agents=[i]``,
    of the composite (product-of-experts) posterior for several agents (default: all)."""
    agents = list(range(den.n_agents)) if agents is None else list(agents)
    _check_agents(agents, den.n_agents)
    rep = den.repeat(k)
    sig = karras_sigmas(steps, sigma_min, sigma_max)
    x = sigma_max * torch.randn(_rows(rep), den.state_dim, generator=generator, dtype=_dtype(rep))
    for t, s in enumerate(sig):
        d = joint_denoise(rep, x, s, agents)
        if t == len(sig) - 1:
            x = d
            break
        s_next = sig[t + 1]
        ratio = s_next**2 / s**2
        x = d + ratio * (x - d) + math.sqrt(s_next**2 * (1 - ratio)) * torch.randn(
            x.shape, generator=generator, dtype=x.dtype)
    return x.reshape(-1, k, den.state_dim)


@dataclass
class FlowResult:
    """Outcome of ``fixed_point`` or ``composite_flow`` for a batch of ``B`` histories.

    ``x [B, d]``: the final point; ``sweeps``: sweeps (fixed-point iterations) run in total;
    ``iterations [B]``: sweeps until each sample's change fell below the tolerance (``sweeps`` if
    it never did); ``converged [B]``; ``stop_reason``: ``"tolerance"`` or ``"max_sweeps"``;
    ``residuals``: largest change ``||x_{k+1} - x_k||`` over the batch, per sweep; ``errors``: mean
    ``||x_k - target||`` per sweep when a target was given; ``trajectory [S + 1, B, d]`` when
    recorded; ``sigmas``: the noise level of each sweep.
    """

    x: torch.Tensor
    sweeps: int
    iterations: torch.Tensor
    converged: torch.Tensor
    stop_reason: str
    residuals: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    sigmas: list[float] = field(default_factory=list)
    trajectory: torch.Tensor | None = None

    def summary(self) -> dict[str, float | int | str]:
        """JSON-able diagnostics."""
        return {"sweeps": self.sweeps, "iterations_mean": float(self.iterations.float().mean()),
                "converged_fraction": float(self.converged.float().mean()), "stop_reason": self.stop_reason,
                "final_residual": self.residuals[-1] if self.residuals else float("nan")}


@torch.no_grad()
def fixed_point(den: Denoiser, agent: int, x0: torch.Tensor, sigma: float, tol: float = 1e-6,
                max_iter: int = 500, target: torch.Tensor | None = None, record: bool = False) -> FlowResult:
    """Iterate ``x <- D_agent(x, sigma)`` from ``x0`` until ``||x_{k+1} - x_k|| <= tol (1 + ||x_k||)``
    for every sample, or ``max_iter`` iterations."""
    _check_agents([agent], den.n_agents)
    return _iterate(lambda x, s: den(agent, x, s), x0, [], sigma, tol, max_iter, target, record)


@torch.no_grad()
def composite_flow(den: Denoiser, x0: torch.Tensor | None = None, agents: list[int] | None = None,
                   steps: int = 20, sigma_min: float = 0.01, sigma_max: float = 10.0, tol: float = 1e-6,
                   max_sweeps: int = 200, target: torch.Tensor | None = None, record: bool = False,
                   generator: torch.Generator | None = None) -> FlowResult:
    """The composite flow over ``agents`` (default: all; one agent gives the single-agent flow).

    One sweep applies ``D_i(., sigma_k)`` for every agent in turn. ``steps`` sweeps follow the
    Karras schedule from ``sigma_max`` to ``sigma_min``; then sweeps at ``sigma_min`` continue
    until every sample moved less than ``tol (1 + ||x||)`` in a sweep or ``max_sweeps`` sweeps ran
    in total. ``x0`` defaults to ``N(0, sigma_max^2 I)`` noise drawn from ``generator``.
    """
    agents = list(range(den.n_agents)) if agents is None else list(agents)
    _check_agents(agents, den.n_agents)
    if x0 is None:
        x0 = sigma_max * torch.randn(_rows(den), den.state_dim, generator=generator, dtype=_dtype(den))

    def sweep(x: torch.Tensor, s: float) -> torch.Tensor:
        for i in agents:
            x = den(i, x, s)
        return x

    schedule = karras_sigmas(steps, sigma_min, sigma_max)[:-1] if steps > 1 else []
    return _iterate(sweep, x0, schedule, sigma_min, tol, max_sweeps, target, record)


def _iterate(step, x0: torch.Tensor, schedule: list[float], sigma: float, tol: float, max_sweeps: int,
             target: torch.Tensor | None, record: bool) -> FlowResult:
    if max_sweeps < 1 or tol < 0:
        raise ValueError(f"need max_sweeps >= 1 and tol >= 0, got {max_sweeps}, {tol}")
    x = x0.clone()
    b = x.shape[0]
    iterations = torch.full((b,), -1, dtype=torch.long)
    residuals: list[float] = []
    errors: list[float] = []
    sigmas: list[float] = []
    traj = [x.clone()] if record else []
    stop = "max_sweeps"
    for k in range(max_sweeps):
        annealing = k < len(schedule)
        s = schedule[k] if annealing else sigma
        new = step(x, s)
        change = (new - x).norm(dim=-1)
        x = new
        sigmas.append(float(s))
        residuals.append(float(change.max()) if b else 0.0)
        if target is not None:
            errors.append(float((x - target).norm(dim=-1).mean()))
        if record:
            traj.append(x.clone())
        if annealing:
            continue
        done = change <= tol * (1 + x.norm(dim=-1))
        iterations = torch.where(done & (iterations < 0), torch.full_like(iterations, k + 1), iterations)
        if bool((iterations >= 0).all()):
            stop = "tolerance"
            break
    sweeps = len(residuals)
    converged = iterations >= 0
    iterations = torch.where(converged, iterations, torch.full_like(iterations, sweeps))
    return FlowResult(x, sweeps, iterations, converged, stop, residuals, errors, sigmas,
                      torch.stack(traj) if record else None)


def _check_agents(agents: list[int], n: int) -> None:
    if not agents or any(not 0 <= int(i) < n for i in agents):
        raise ValueError(f"agents must be a non-empty list of indices in [0, {n}), got {agents}")


def _rows(den: Denoiser) -> int:
    return int(den.batch_size)


def _dtype(den: Denoiser) -> torch.dtype:
    return den.dtype
