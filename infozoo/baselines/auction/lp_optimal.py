"""The revenue-optimal DSIC mechanism of a discrete auction setting, by linear programming.

Type space: every bidder's value vector t_i takes one of T values (support^m), profile t = (t_1..t_n)
with probability P(t) = prod_i P(t_i). Variables per profile: allocation x_ij(t) in [0, 1] and
payment p_i(t). The LP (Myerson's problem written out, as in Conitzer–Sandholm's automated
mechanism design):

    max  sum_t P(t) sum_i p_i(t)
    s.t. sum_i x_ij(t) <= 1                                   (each item at most once)
         sum_j x_ij(t) <= 1                                   (unit-demand only)
         <v(t_i), x_i(t)> - p_i(t) >= 0                       (ex post IR)
         <v(t_i), x_i(t)> - p_i(t) >= <v(t_i), x_i(t'_i, t_-i)> - p_i(t'_i, t_-i)
                                                              (DSIC, every deviation t'_i)

On Yao's 2x2 setting (values i.i.d. uniform on {3, 7}) the optimum is 10.75. Bids off the type
grid are snapped item-wise to the nearest support point; every bid then acts as some type's
report, so DSIC over the grid keeps the mechanism strategy-proof.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from infozoo.core.lp import solve
from infozoo.envs.auction.mechanism import Outcome, check_bids
from infozoo.envs.auction.settings import AuctionSetting, DiscreteValues

VARIABLE_LIMIT = 60_000


@dataclass
class LPOptimal:
    """Lookup-table mechanism holding the LP solution x(t), p(t) for every type profile t."""

    setting: AuctionSetting
    allocation: torch.Tensor  # [P, n, m] indexed by profile
    payment: torch.Tensor  # [P, n]
    objective: float
    solver: str
    strategyproof: bool = field(default=True, init=False)
    name: str = field(default="lp-optimal", init=False)

    def profile_index(self, bids: torch.Tensor) -> torch.Tensor:
        s = self.setting
        assert isinstance(s.values, DiscreteValues)
        support = torch.tensor(s.values.support, dtype=bids.dtype)
        K = len(support)
        k = (bids.detach().unsqueeze(-1) - support).abs().argmin(-1)  # [B, n, m]
        item_w = K ** torch.arange(s.items - 1, -1, -1)
        t = (k * item_w).sum(-1)  # type index per bidder, matches itertools.product order
        T = K ** s.items
        bidder_w = T ** torch.arange(s.bidders - 1, -1, -1)
        return (t * bidder_w).sum(-1)

    def __call__(self, bids: torch.Tensor) -> Outcome:
        s = self.setting
        b = check_bids(bids, s.bidders, s.items)
        idx = self.profile_index(b)
        return Outcome(self.allocation[idx].to(b.dtype), self.payment[idx].to(b.dtype))


def lp_optimal(setting: AuctionSetting, solver: str = "highs", time_limit: float | None = 600) -> LPOptimal:
    """Solve the optimal-DSIC LP of a discrete ``setting``."""
    import pulp

    if not isinstance(setting.values, DiscreteValues):
        raise ValueError(f"lp-optimal needs a discrete setting (values kind 'discrete'); "
                         f"{setting.name or 'this setting'} is continuous")
    n, m = setting.bidders, setting.items
    types, probs = setting.type_space()
    T = types.shape[0]
    P = T**n
    if P * n * (m + 1) > VARIABLE_LIMIT:
        raise ValueError(f"lp-optimal: {P} type profiles x {n} bidders is too large an LP "
                         f"(limit {VARIABLE_LIMIT} variables)")
    profiles = torch.cartesian_prod(*[torch.arange(T)] * n).reshape(P, n)
    index = {tuple(row.tolist()): r for r, row in enumerate(profiles)}
    v = types.tolist()
    prob = probs[profiles].prod(1).tolist()

    lp = pulp.LpProblem("optimal_dsic", pulp.LpMaximize)
    x = [[[pulp.LpVariable(f"x_{t}_{i}_{j}", 0, 1) for j in range(m)] for i in range(n)]
         for t in range(P)]
    p = [[pulp.LpVariable(f"p_{t}_{i}") for i in range(n)] for t in range(P)]
    lp += pulp.lpSum(prob[t] * p[t][i] for t in range(P) for i in range(n))

    def u(i: int, true_type: int, t: int) -> Any:
        return pulp.lpSum(v[true_type][j] * x[t][i][j] for j in range(m)) - p[t][i]

    for t in range(P):
        prof = profiles[t].tolist()
        for j in range(m):
            lp += pulp.lpSum(x[t][i][j] for i in range(n)) <= 1
        for i in range(n):
            if setting.unit_demand:
                lp += pulp.lpSum(x[t][i][j] for j in range(m)) <= 1
            lp += u(i, prof[i], t) >= 0
            for dev in range(T):
                if dev != prof[i]:
                    t2 = index[tuple(prof[:i] + [dev] + prof[i + 1:])]
                    lp += u(i, prof[i], t) >= u(i, prof[i], t2)
    result = solve(lp, solver, time_limit)
    if not result.optimal:
        raise RuntimeError(f"lp-optimal: the LP ended with status {result.status} ({result.solver})")
    alloc = torch.tensor([[[x[t][i][j].value() for j in range(m)] for i in range(n)] for t in range(P)],
                         dtype=torch.float64).clamp(0, 1)
    pay = torch.tensor([[p[t][i].value() for i in range(n)] for t in range(P)], dtype=torch.float64)
    return LPOptimal(setting, alloc, pay, float(result.objective), result.solver)
