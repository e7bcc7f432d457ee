"""The best sequential posted-price mechanism, by dynamic programming: the reference for ``spm-ppo``.

A sequential price mechanism (see ``infozoo.envs.sequential_price.rules``) visits bidders
0..n-1 and posts item prices p_t to bidder t, who buys its utility-maximising bundle B_t among the
unsold items S_t. Bidders' values are independent across bidders, so what happened before visit t
says nothing about the bidders still to come: the unsold set S_t is a sufficient state, and the
revenue-optimal pricing policy solves the Bellman recursion

    V_n(S) = 0,
    V_t(S) = max_{p in R_+^S} E_{v_t}[ sum_{j in B_t(v_t, p)} p_j + V_{t+1}(S minus B_t(v_t, p)) ],

with the optimal value V_0(M) the best revenue any sequential price mechanism with this visiting
order can reach (the public deep-seq-auctions code uses the same recursion, fitting each stage's
prices by gradient ascent; here each stage is solved exactly or on a fine grid):

- **Additive values.** Items separate: bidder t buys item j iff v_tj >= p_tj, whatever happens
  to the other items, so V_t(S) = sum_{j in S} W_tj with the per-item recursion
  W_tj = max_p P(v_tj >= p) (p - W_{t+1,j}) + W_{t+1,j}. For U[a, b] values the maximiser is
  p = clip((b + W)/2, a, b) in closed form; for discrete values it is a support point (enumerated).
  Both are exact. Two U[0,1] bidders: p_1 = 5/8, p_2 = 1/2, 25/64 per item (0.78125 on 2x2).
- **Unit-demand values** (m <= 3): bidder t buys the single item with the largest v_tj - p_tj if
  that is >= 0. The stage problem over p in [0, high]^S is solved on a grid of ``grid`` points
  per item (fewer for three items: at most ``GRID_POINTS`` price vectors), refined ``levels``
  times around the best point (each level zooms into +-1 step of the previous grid), with choice
  probabilities
  P_j(p) = int_{max(p_j, a_j)}^{b_j} f_j(v) prod_{k != j} F_k(v - p_j + p_k) dv by a
  ``quadrature``-point midpoint rule (uniform values) or exactly over the type space (discrete).
  This is the best policy on the refined grid, up to quadrature error.

The mechanism is strategy-proof and IR by construction (``SequentialPriceMechanism``).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import torch

from infozoo.envs.auction.settings import AuctionSetting, DiscreteValues
from infozoo.envs.sequential_price.rules import SequentialPriceMechanism, check_setting, choose

UNIT_DEMAND_MAX_ITEMS = 3
GRID_POINTS = 8000  # price vectors per grid level in the unit-demand search (27 per item for 3 items)


def _best_item_price(setting: AuctionSetting, t: int, j: int, cont: float) -> tuple[float, float]:
    """argmax_p P(v_tj >= p)(p - cont) + cont and its value (additive stage problem, exact)."""
    if isinstance(setting.values, DiscreteValues):
        support = np.array(setting.values.support)
        tail = np.cumsum(np.array(setting.values.probs)[::-1])[::-1]  # P(v >= s_k)
        gains = tail * (support - cont) + cont
        k = int(gains.argmax())  # posting the top value is never worse than not selling
        return float(support[k]), float(gains[k])
    a, b = setting.values.low[t][j], setting.values.high[t][j]
    p = min(max((b + cont) / 2, a), b)
    return p, (b - p) / (b - a) * (p - cont) + cont


def _additive_dp(setting: AuctionSetting) -> tuple[np.ndarray, float]:
    n, m = setting.shape
    prices = np.zeros((n, m))
    W = np.zeros(m)  # W_{t+1, j}
    for t in range(n - 1, -1, -1):
        for j in range(m):
            prices[t, j], W[j] = _best_item_price(setting, t, j, W[j])
    table = np.broadcast_to(prices[:, None, :], (n, 2**m, m)).copy()
    return table, float(W.sum())


def _choice_probs(setting: AuctionSetting, t: int, items: list[int], P: np.ndarray, quadrature: int) -> np.ndarray:
    """Probabilities [K, |S| + 1] that unit-demand bidder t buys item k of ``items`` (last: none)."""
    K, s = P.shape
    if isinstance(setting.values, DiscreteValues):
        support = np.array(setting.values.support)
        probs = np.array(setting.values.probs)
        combos = np.array(list(itertools.product(range(len(support)), repeat=s)))
        vals, w = support[combos], probs[combos].prod(1)  # [T, s], [T]
        T = len(w)
        buy = choose(np.repeat(vals[None], K, 0).reshape(K * T, s), np.repeat(P, T, 0),
                     np.ones((K * T, s)), unit_demand=True).reshape(K, T, s)
        bought = (buy * w[None, :, None]).sum(1)
    else:
        a = np.array([setting.values.low[t][j] for j in items])
        b = np.array([setting.values.high[t][j] for j in items])
        q = (np.arange(quadrature) + 0.5) / quadrature
        bought = np.zeros((K, s))
        for k in range(s):
            lo = np.maximum(P[:, k], a[k])  # [K]
            length = np.clip(b[k] - lo, 0, None)
            v = lo[:, None] + q[None, :] * length[:, None]  # [K, Q]
            prod = np.ones_like(v)
            for o in range(s):
                if o != k:
                    prod *= np.clip((v - P[:, k:k + 1] + P[:, o:o + 1] - a[o]) / (b[o] - a[o]), 0, 1)
            bought[:, k] = length / (b[k] - a[k]) * prod.mean(1)
    return np.concatenate([bought, 1 - bought.sum(1, keepdims=True)], axis=1)


def _unit_demand_dp(setting: AuctionSetting, grid: int, levels: int, quadrature: int) -> tuple[np.ndarray, float]:
    n, m = setting.shape
    if m > UNIT_DEMAND_MAX_ITEMS:
        raise ValueError(f"spm-dp for unit-demand bidders searches a price grid and supports at most "
                         f"{UNIT_DEMAND_MAX_ITEMS} items; the setting has {m}")
    high = setting.high().numpy()
    table = np.zeros((n, 2**m, m))
    V = np.zeros(2**m)  # V_{t+1}(S), S as a bit mask
    for t in range(n - 1, -1, -1):
        V_new = np.zeros(2**m)
        for mask in range(1, 2**m):
            items = [j for j in range(m) if mask >> j & 1]
            cont = np.array([V[mask & ~(1 << j)] for j in items] + [V[mask]])
            hi = high[t, items]
            lo_box, hi_box = np.zeros(len(items)), hi.copy()
            best_p, best_v = None, -math.inf
            g = min(grid, int(GRID_POINTS ** (1 / len(items)) + 1e-9))  # at most GRID_POINTS price vectors
            for _ in range(levels + 1):
                axes = [np.linspace(lo_box[k], hi_box[k], g) for k in range(len(items))]
                P = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(items))
                probs = _choice_probs(setting, t, items, P, quadrature)
                obj = (probs[:, :-1] * P).sum(1) + probs @ cont
                k = int(obj.argmax())
                if obj[k] > best_v:
                    best_p, best_v = P[k], float(obj[k])
                step = (hi_box - lo_box) / (g - 1)
                lo_box, hi_box = np.clip(best_p - step, 0, hi), np.clip(best_p + step, 0, hi)
            table[t, mask, items] = best_p
            V_new[mask] = best_v
        V = V_new
    return table, float(V[-1])


class DPPolicy:
    """Price lookup ``table[t, S, j]`` (S = bit mask of unsold items) as a ``PricePolicy``."""

    def __init__(self, table: np.ndarray, high: torch.Tensor) -> None:
        self.table = torch.as_tensor(table, dtype=torch.float64)
        self.high = high.to(torch.float64)

    def __call__(self, obs: torch.Tensor, t: int, remaining: torch.Tensor) -> torch.Tensor:
        bits = 2 ** torch.arange(remaining.shape[1])
        mask = (remaining.round().long() * bits).sum(1)
        prices = self.table[t][mask]
        frac = torch.where(self.high[t] > 0, prices / self.high[t], torch.zeros_like(prices))
        return (2 * frac - 1).clamp(-1, 1)


def best_sequential_prices(setting: AuctionSetting, grid: int = 41, levels: int = 3,
                           quadrature: int = 256) -> tuple[np.ndarray, float]:
    """The DP's price table [n, 2^m, m] and its expected revenue V_0(all items)."""
    check_setting(setting)
    if not setting.unit_demand:
        return _additive_dp(setting)
    return _unit_demand_dp(setting, grid, levels, quadrature)


def spm_dp(setting: AuctionSetting, grid: int = 41, levels: int = 3, quadrature: int = 256) -> Any:
    """The revenue-optimal sequential price mechanism for ``setting`` (bidders visited 0..n-1).

    The returned mechanism carries ``expected_revenue`` (the DP value) and ``report``."""
    table, value = best_sequential_prices(setting, grid, levels, quadrature)
    mech = SequentialPriceMechanism(setting, DPPolicy(table, setting.high()), name="spm-dp")
    mech.expected_revenue = value  # type: ignore[attr-defined]
    mech.prices = table  # type: ignore[attr-defined]
    mech.report = {"dp_revenue": value, "dp_exact": not setting.unit_demand}  # type: ignore[attr-defined]
    return mech
