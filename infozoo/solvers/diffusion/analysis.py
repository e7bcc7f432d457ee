"""Fixed points, Jacobian rank, deviation and the linear-surrogate bound.

For a bound denoiser ``D_i(., sigma)`` (``composite.Denoiser``) and the true states ``s``:

- **Jacobian** ``J_i(x) = dD_i/dx`` at a fixed point ``x* = D_i(x*)``, by ``torch.func.jacrev``
  (rows of the batch do not interact, so the Jacobian of the batch sum is every row's Jacobian).
  For the optimal denoiser ``J_i = Cov[s | x, h_i] / sigma^2`` is symmetric with eigenvalues in
  ``[0, 1]``: ~1 along directions the history leaves free, ~0 along directions it pins; in the
  noiseless linear-Gaussian case it is exactly the projection ``P_i`` and ``rank J_i`` is the
  dimension of the set of states consistent with ``h_i``.
- **Numerical rank**: the number of singular values above ``RANK_THRESHOLD = 1/2`` (a direction
  counts as free when the posterior spread along it exceeds the noise level: ``lambda/(lambda +
  sigma^2) > 1/2`` iff ``lambda > sigma^2``); also the *soft rank* ``sum of singular values``.
- **Deviation** of the fixed point reached from the true state ``s`` (iteration started at ``s``):
  ``||x* - s||`` in full, and ``||Q_p^T (x* - s)||`` along the *pinned* eigen-directions ``Q_p`` of
  the symmetrised ``J`` (eigenvalue ``< 1/2``): the part of the error that is not mere uncertainty.
  With an exact oracle (linear-Gaussian) also the distance to the exact consistent affine set.
- **Linear surrogate** (the paper approximates the model locally by a linear regression; this is our
  reading of it): near ``x*`` the denoiser is the linear regression of the clean state on the noisy
  one, ``D(x) ~ x* + J (x - x*)``. Evaluating it at the true state, ``D(s) - s ~ (J - I)(s - x*)``,
  so along the pinned eigen-directions (eigenvalues ``lambda_k < 1/2`` of the symmetrised ``J``)

      ||Q_p^T (x* - s)||  <=  ||Q_p^T (D(s) - s)|| / (1 - max_k lambda_k)  <=  2 ||D(s) - s||,

  a first-order bound of the deviation by the denoiser's error at the true state. The more
  directions the model leaves free (higher rank), the fewer directions this error can push the
  fixed point along; ``rank_deviation`` reports the measured correlation between rank and
  deviation across states and agents (the paper: negative), whatever its sign.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.func import jacrev

from infozoo.solvers.diffusion.composite import Denoiser, fixed_point

RANK_THRESHOLD = 0.5  # singular values above this count toward the numerical rank


def jacobian(den: Denoiser, agent: int | None, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``J_i(x) = dD_i(x, sigma)/dx``, ``[B, d, d]`` (row ``b``: the Jacobian for history ``b``)."""
    x = x.detach().clone()
    jac = jacrev(lambda z: den(agent, z, sigma).sum(0))(x)  # [d_out, B, d_in]
    return jac.permute(1, 0, 2).detach()


def singular_values(jac: torch.Tensor) -> torch.Tensor:
    """Singular values ``[B, d]`` in decreasing order."""
    return torch.linalg.svdvals(jac)


def numerical_rank(jac: torch.Tensor, threshold: float = RANK_THRESHOLD) -> torch.Tensor:
    """Number of singular values above ``threshold``, ``[B]``."""
    return (singular_values(jac) > threshold).sum(-1)


def pinned_basis(jac: torch.Tensor, threshold: float = RANK_THRESHOLD
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eigen-decomposition of the symmetrised Jacobian: ``(eigenvalues [B, d], vectors [B, d, d])``
    and the mask ``[B, d]`` of pinned directions (eigenvalue below ``threshold``)."""
    lam, q = torch.linalg.eigh(0.5 * (jac + jac.transpose(-1, -2)))
    return lam, q, lam < threshold


def surrogate_bound(den: Denoiser, agent: int, s_true: torch.Tensor, x_fixed: torch.Tensor, sigma: float,
                    jac: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The linear-surrogate bound of the module docstring, per history.

    Returns ``pinned_deviation`` ``||Q_p^T (x* - s)||`` (measured), ``bound``
    ``||Q_p^T (D(s) - s)|| / (1 - max pinned eigenvalue)``, ``denoiser_error`` ``||D(s) - s||``
    and ``pinned_dims``."""
    jac = jacobian(den, agent, x_fixed, sigma) if jac is None else jac
    lam, q, pinned = pinned_basis(jac)
    with torch.no_grad():
        resid = den(agent, s_true.to(x_fixed.dtype), sigma) - s_true.to(x_fixed.dtype)
    dev = x_fixed - s_true.to(x_fixed.dtype)
    proj = lambda v: (torch.einsum("bdk,bd->bk", q.to(v.dtype), v) * pinned).norm(dim=-1)  # noqa: E731
    lam_max = torch.where(pinned, lam, torch.full_like(lam, -np.inf)).amax(-1).clamp(min=0.0)
    return {"pinned_deviation": proj(dev), "bound": proj(resid) / (1 - lam_max), "denoiser_error": resid.norm(dim=-1),
            "pinned_dims": pinned.sum(-1)}


@dataclass
class FixedPointAnalysis:
    """Per (history, agent) arrays ``[B, n]`` from ``analyse_fixed_points``."""

    rank: np.ndarray  # numerical rank of J_i at the fixed point
    soft_rank: np.ndarray  # sum of singular values of J_i
    deviation: np.ndarray  # ||x* - s||
    pinned_deviation: np.ndarray  # ||Q_p^T (x* - s)||
    bound: np.ndarray  # linear-surrogate bound of pinned_deviation
    iterations: np.ndarray  # fixed-point iterations
    affine_distance: np.ndarray | None = None  # distance to the exact consistent set (oracle only)
    exact_rank: np.ndarray | None = None  # numerical rank of the exact Jacobian at the same sigma (oracle only)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rank_mean": float(self.rank.mean()), "soft_rank_mean": float(self.soft_rank.mean()),
            "deviation_mean": float(self.deviation.mean()), "deviation_median": float(np.median(self.deviation)),
            "diverged_fraction": float((self.deviation > 1e3).mean()),  # fixed-point iteration ran away
            "pinned_deviation_mean": float(self.pinned_deviation.mean()),
            "bound_mean": float(self.bound.mean()),
            "bound_holds_fraction": float((self.pinned_deviation <= self.bound + 1e-9).mean()),
            "bound_tightness_median": float(np.median(self.pinned_deviation / np.maximum(self.bound, 1e-12))),
            "fixed_point_iterations_mean": float(self.iterations.mean()),
        }
        out.update(rank_deviation(self.rank, self.deviation, "deviation"))
        out.update(rank_deviation(self.soft_rank, self.pinned_deviation, "soft_pinned"))
        if self.affine_distance is not None:
            out["affine_distance_mean"] = float(self.affine_distance.mean())
            out.update(rank_deviation(self.rank, self.affine_distance, "affine"))
        if self.exact_rank is not None:
            out["rank_matches_exact_fraction"] = float((self.rank == self.exact_rank).mean())
        return out


def analyse_fixed_points(den: Denoiser, s_true: torch.Tensor, sigma: float, agents: list[int] | None = None,
                         exact: Any = None, tol: float = 1e-5, max_iter: int = 200) -> FixedPointAnalysis:
    """For each agent: iterate ``D_i(., sigma)`` from the true state to its fixed point ``x*``, take the
    Jacobian there, its rank, the deviation ``x* - s`` and the surrogate bound. ``exact`` (an
    ``ExactDenoiser`` for the same histories, in the same coordinates) adds the distance of ``x*`` to
    the exact consistent set and the numerical rank of the exact Jacobian (noiseless, small ``sigma``:
    the dimension of that set)."""
    agents = list(range(den.n_agents)) if agents is None else agents
    s = s_true.to(den.dtype)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("rank", "soft", "dev", "pdev", "bound", "it", "aff", "er")}
    for i in agents:
        fp = fixed_point(den, i, s, sigma, tol=tol, max_iter=max_iter)
        jac = jacobian(den, i, fp.x, sigma)
        sb = surrogate_bound(den, i, s, fp.x, sigma, jac)
        cols["rank"].append(numerical_rank(jac).numpy())
        cols["soft"].append(singular_values(jac).sum(-1).numpy())
        cols["dev"].append((fp.x - s).norm(dim=-1).numpy())
        cols["pdev"].append(sb["pinned_deviation"].numpy())
        cols["bound"].append(sb["bound"].numpy())
        cols["it"].append(fp.iterations.numpy())
        if exact is not None:
            cols["aff"].append(exact.affine_distance(i, fp.x.double()).numpy())
            cols["er"].append(numerical_rank(exact.jacobian(i, sigma)).numpy())
    st = lambda k: np.stack(cols[k], axis=1).astype(float)  # noqa: E731
    return FixedPointAnalysis(st("rank"), st("soft"), st("dev"), st("pdev"), st("bound"), st("it"),
                              st("aff") if exact is not None else None, st("er") if exact is not None else None)


def rank_deviation(rank: np.ndarray, deviation: np.ndarray, name: str = "deviation") -> dict[str, float]:
    """Pearson and Spearman correlation of rank and deviation over all (state, agent) pairs
    (``nan`` when either is constant)."""
    from scipy.stats import pearsonr, spearmanr

    r, d = np.asarray(rank, float).ravel(), np.asarray(deviation, float).ravel()
    if r.size < 3 or np.ptp(r) == 0 or np.ptp(d) == 0:
        return {f"{name}_pearson": float("nan"), f"{name}_spearman": float("nan")}
    return {f"{name}_pearson": float(pearsonr(r, d)[0]), f"{name}_spearman": float(spearmanr(r, d)[0])}
