"""Augmented-Lagrangian schedule for constrained learning (RegretNet, data-market net, GemNet).

Minimise ``L = f + sum_c lambda_c g_c + rho/2 sum_c g_c^2`` over the network, with constraint
violations ``g_c >= 0`` (regret, obedience, over-allocation). Every ``update_every`` steps the
multipliers take a dual ascent step ``lambda_c <- lambda_c + rho * g_c`` and every ``rho_every``
steps the penalty grows ``rho <- min(rho * rho_growth, rho_max)``. This is the schedule of
RegretNet (Duetting et al.): lambda updated every few hundred steps, rho increased slowly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class AugmentedLagrangian:
    """State of the multipliers ``lambda`` and penalty ``rho`` for ``n_constraints`` constraints."""

    n_constraints: int
    rho: float = 1.0
    rho_growth: float = 1.0
    rho_max: float = 1e4
    update_every: int = 100
    rho_every: int = 1000
    lam_init: float = 0.0
    lam: torch.Tensor = field(init=False)
    _step: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.lam = torch.full((self.n_constraints,), float(self.lam_init), dtype=torch.float64)

    def penalty(self, g: torch.Tensor) -> torch.Tensor:
        """``sum lambda g + rho/2 sum g^2`` for the current violations ``g`` (shape [C])."""
        return (self.lam.to(g) * g).sum() + 0.5 * self.rho * (g**2).sum()

    def step(self, g: torch.Tensor) -> None:
        """Advance one training step; update lambda and rho on their schedules."""
        self._step += 1
        if self._step % self.update_every == 0:
            self.lam = self.lam + self.rho * g.detach().to(torch.float64).cpu()
        if self.rho_growth != 1.0 and self._step % self.rho_every == 0:
            self.rho = min(self.rho * self.rho_growth, self.rho_max)
