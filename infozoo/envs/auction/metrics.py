"""Auction metrics, batched: revenue, welfare, IR violation, over-allocation and regret.

Regret of bidder i at profile v (RegretNet's ex post regret):
    rgt_i(v) = max_{b_i} u_i(v_i; (b_i, v_{-i})) - u_i(v_i; v)  >= 0.
- Discrete settings: exact, by enumerating every misreport b_i in the type space (and, when the
  profile space is small enough, every profile with its probability: expectations are exact).
- Continuous settings: gradient ascent on misreports from random restarts (Adam, clipped to the
  value support), keeping the best iterate. Gradient search can understate regret (the mechanism
  may be flat or discontinuous in b_i), so the budget (profiles x restarts x steps, step size)
  is always reported with the number.
- Menu mechanisms: exact best response over the menu, ``menu_regret``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from infozoo.core.progress import progress
from infozoo.core.seeding import torch_generator
from infozoo.envs.auction.mechanism import Outcome, check_outcome, over_allocation, utility
from infozoo.envs.auction.settings import AuctionSetting

EXACT_PROFILE_LIMIT = 200_000  # enumerate discrete profile spaces up to this size


@dataclass(frozen=True)
class RegretBudget:
    """How hard regret is searched for: ``profiles`` x ``restarts`` x ``steps`` of Adam(``lr``)."""

    profiles: int = 1000
    restarts: int = 10
    steps: int = 50
    lr: float = 0.05

    def describe(self) -> str:
        return (f"grad: {self.profiles} profiles x {self.restarts} restarts x {self.steps} "
                f"steps (Adam lr {self.lr}, lr scaled by value range)")


def revenue(outcome: Outcome) -> torch.Tensor:
    """Sum of payments per profile, [B]."""
    return outcome.payment.sum(-1)


def welfare(values: torch.Tensor, outcome: Outcome) -> torch.Tensor:
    """Sum of bidders' values for their allocations, [B]."""
    return (values * outcome.allocation).sum(dim=(1, 2))


def ir_violation(values: torch.Tensor, outcome: Outcome) -> torch.Tensor:
    """sum_i max(0, -u_i) per profile for truthful bids, [B]."""
    return (-utility(values, outcome)).clamp(min=0).sum(-1)


def run_chunked(mechanism: Any, bids: torch.Tensor, chunk: int = 100_000) -> Outcome:
    """Evaluate ``mechanism`` on a large batch in chunks, without gradients. Every chunk's outcome is
    checked (``check_outcome``: exact shapes, finite, probabilities in [0, 1]) before it is used;
    over-allocation is measured by ``evaluate``, not refused, so an infeasible learned mechanism is
    reported as such."""
    _, n, m = bids.shape
    with torch.no_grad():
        parts = [check_outcome(mechanism(bids[s:s + chunk]), min(chunk, bids.shape[0] - s), n, m)
                 for s in range(0, bids.shape[0], chunk)]
    return Outcome(torch.cat([p.allocation.to(bids.dtype) for p in parts]),
                   torch.cat([p.payment.to(bids.dtype) for p in parts]))


# ---- regret -----------------------------------------------------------------------------------


def exact_regret(mechanism: Any, setting: AuctionSetting, values: torch.Tensor,
                 chunk: int = 20_000) -> torch.Tensor:
    """Exact regret [B, n] of a discrete setting: every misreport in the type space is tried."""
    types, _ = setting.type_space(values.dtype)  # [T, m]
    B, n, m = values.shape
    T = types.shape[0]
    truthful = utility(values, run_chunked(mechanism, values))
    best = truthful.clone()
    for i in range(n):
        for s in range(0, B, chunk):
            v = values[s:s + chunk]
            bids = v.unsqueeze(1).repeat(1, T, 1, 1)  # [b, T, n, m]
            bids[:, :, i, :] = types
            out = run_chunked(mechanism, bids.reshape(-1, n, m))
            u = ((v[:, None, i, :] * out.allocation.reshape(-1, T, n, m)[:, :, i, :]).sum(-1)
                 - out.payment.reshape(-1, T, n)[:, :, i])
            best[s:s + chunk, i] = torch.maximum(best[s:s + chunk, i], u.amax(dim=1))
    return (best - truthful).clamp(min=0)


def gradient_regret(mechanism: Any, setting: AuctionSetting, values: torch.Tensor,
                    budget: RegretBudget, generator: torch.Generator | None = None,
                    chunk: int = 256) -> torch.Tensor:
    """Regret [B, n] found by gradient ascent on misreports from ``budget.restarts`` random starts.

    Each restart starts at a uniform draw from the value support box, takes ``budget.steps``
    Adam steps on u_i(v_i; (b_i, v_{-i})) with the step size scaled by the support width, is
    clipped back into the support after each step, and the best utility seen at any iterate
    counts (so non-differentiable mechanisms still get a random search).
    """
    B, n, m = values.shape
    R = budget.restarts
    low, high = setting.low(values.dtype), setting.high(values.dtype)  # [n, m]
    with torch.no_grad():
        truthful = utility(values, run_chunked(mechanism, values))
    best = truthful.clone()
    for i in range(n):
        for s in progress(range(0, B, chunk), desc=f"regret bidder {i}", total=math.ceil(B / chunk)):
            v = values[s:s + chunk]
            b = v.shape[0]
            start = torch.rand((b, R, m), generator=generator, dtype=values.dtype)
            mis = (low[i] + start * (high[i] - low[i])).requires_grad_(True)
            opt = torch.optim.Adam([mis], lr=budget.lr)
            scale = (high[i] - low[i])
            top = torch.full((b,), -math.inf, dtype=values.dtype)
            for _ in range(budget.steps + 1):
                bids = v.unsqueeze(1).expand(b, R, n, m).clone()
                bids[:, :, i, :] = mis
                out = mechanism(bids.reshape(b * R, n, m))
                alloc = out.allocation.reshape(b, R, n, m)[:, :, i, :].to(values.dtype)
                pay = out.payment.reshape(b, R, n)[:, :, i].to(values.dtype)
                u = (v[:, None, i, :] * alloc).sum(-1) - pay  # [b, R]
                top = torch.maximum(top, u.detach().amax(dim=1))
                if not u.requires_grad:
                    break  # nothing to follow: the restarts alone are the search
                opt.zero_grad()
                (-u.sum()).backward()
                with torch.no_grad():
                    mis.grad *= scale  # Adam is scale-free; this keeps lr in units of the range
                opt.step()
                with torch.no_grad():
                    mis.copy_(torch.maximum(torch.minimum(mis, high[i]), low[i]))
            best[s:s + chunk, i] = torch.maximum(best[s:s + chunk, i], top)
    return (best - truthful).clamp(min=0)


def menu_regret(mechanism: Any, values: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Exact best-response regret [B, n] of a menu mechanism: with self-bid independent menus a
    misreport can only pick another menu element (or nothing), so
    rgt_i = max(0, max_k <v_i, alpha_i^k> - beta_i^k) - u_i(truthful).
    Profiles are processed ``chunk`` at a time (menus can be large: [chunk, n, K, m])."""
    if values.shape[0] > chunk:
        return torch.cat([menu_regret(mechanism, values[s:s + chunk], chunk)
                          for s in range(0, values.shape[0], chunk)])
    with torch.no_grad():
        alloc, price = mechanism.menus(values)  # [B, n, K, m], [B, n, K]
        best = ((values.unsqueeze(2) * alloc.to(values.dtype)).sum(-1) - price.to(values.dtype))
        best = best.amax(dim=-1).clamp(min=0)
        truthful = utility(values, mechanism(values))
    return (best - truthful).clamp(min=0)


# ---- the evaluation behind `infozoo eval` and the tables ------------------------------------------


def evaluate(setting: AuctionSetting, mechanism: Any, n: int = 100_000, seed: int = 0,
             regret_restarts: int = 10, regret_steps: int = 50, regret_lr: float = 0.05,
             regret_profiles: int = 1000, exact: bool | None = None, baseline: Any = None) -> dict[str, Any]:
    """Evaluate ``mechanism`` on ``setting`` with truthful bids; returns the metrics as a dict.

    Discrete settings whose profile space has at most ``EXACT_PROFILE_LIMIT`` profiles are
    enumerated with their probabilities (``exact=True``): expectations and regret are exact.
    Otherwise ``n`` profiles are drawn under ``seed``; regret is searched on the first
    ``regret_profiles`` of them (exactly for discrete settings, by gradient ascent otherwise, or
    by exact best response over the menu for menu mechanisms that are strategy-proof).
    With ``baseline`` (another mechanism spec) the result also holds the paired revenue
    difference on the same profiles, ``revenue_minus_baseline`` and its standard error, which is
    much smaller than either revenue's when the two mechanisms are close.
    """
    from infozoo.registry import check_mechanism, make_mechanism, setting_id, setting_label

    if baseline is not None:
        check_mechanism(baseline, setting)  # before any work
    mechanism = make_mechanism(mechanism, setting)
    g = torch_generator(seed)
    weights = None
    can_enumerate = setting.discrete and (
        len(setting.values.support) ** (setting.items * setting.bidders) <= EXACT_PROFILE_LIMIT)
    if exact is None:
        exact = can_enumerate
    if exact and not can_enumerate:
        raise ValueError("exact evaluation needs a discrete setting with at most "
                         f"{EXACT_PROFILE_LIMIT} profiles")
    if exact:
        types, probs = setting.type_space()
        T = types.shape[0]
        grid = torch.cartesian_prod(*[torch.arange(T)] * setting.bidders).reshape(-1, setting.bidders)
        values = types[grid]  # [T^n, n, m]
        weights = probs[grid].prod(dim=1)
    else:
        values = setting.sample(n, g)
    out = run_chunked(mechanism, values)
    rev, wel = revenue(out), welfare(values, out)
    irv, ovr = ir_violation(values, out), over_allocation(out.allocation, setting.unit_demand)

    # regret
    rv = values if exact else values[:regret_profiles]
    rw = weights
    if setting.discrete:
        rgt = exact_regret(mechanism, setting, rv)
        budget = ("exact: every misreport, every profile" if exact
                  else f"exact misreports on {rv.shape[0]} sampled profiles")
    elif hasattr(mechanism, "menus") and getattr(mechanism, "strategyproof", False):
        rgt = menu_regret(mechanism, rv)
        budget = f"exact best response over the menu on {rv.shape[0]} profiles"
    else:
        b = RegretBudget(rv.shape[0], regret_restarts, regret_steps, regret_lr)
        rgt = gradient_regret(mechanism, setting, rv, b, generator=g)
        budget = b.describe()
    per_profile_rgt = rgt.mean(-1)  # mean over bidders

    def mean(x: torch.Tensor, w: torch.Tensor | None) -> float:
        return float((x * w).sum() / w.sum()) if w is not None else float(x.mean())

    def stderr(x: torch.Tensor, w: torch.Tensor | None) -> float:
        if w is not None:
            return 0.0
        return float(x.std() / math.sqrt(max(len(x), 1)))

    paired: dict[str, Any] = {}
    if baseline is not None:
        diff = rev - revenue(run_chunked(make_mechanism(baseline, setting), values))
        paired = {"baseline": str(baseline), "revenue_minus_baseline": mean(diff, weights),
                  "revenue_minus_baseline_stderr": stderr(diff, weights)}
    return {
        "revenue": mean(rev, weights),
        "revenue_stderr": stderr(rev, weights),
        **paired,
        "welfare": mean(wel, weights),
        "ir_violation": mean(irv, weights),
        "ir_violation_max": float(irv.max()),
        "over_allocation_max": float(ovr.max()),
        "over_allocation_mean": mean(ovr, weights),
        "regret_mean": mean(per_profile_rgt, rw),
        "regret_max": float(rgt.max()),
        "regret_budget": budget,
        "n": int(values.shape[0]),
        "exact": bool(exact),
        "strategyproof_by_construction": bool(getattr(mechanism, "strategyproof", False)),
        "certified": getattr(mechanism, "certified", None),
        "setting": setting_label(setting),
        "setting_id": setting_id(setting),
        "seed": seed,
    }


